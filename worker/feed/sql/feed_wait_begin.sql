-- A consumer with nothing left to read, before it waits for a NOTIFY: take the feed's advisory
-- lock exclusively, for the session. Granted only when no writer that skipped its NOTIFY is still
-- uncommitted; from then on every writer notifies (the triggers of
-- 20261126100400_feed_on_the_events_table.sql try the same key shared). False: writers are busy
-- (or another consumer waits), so poll.
select pg_try_advisory_lock(hashtextextended('public.engagement_event_feed', 0))

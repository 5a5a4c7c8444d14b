-- The live feed reads engagement_events itself instead of a log beside it (the log of
-- 20261126100300_event_feed.sql is dropped here). Why: the log cost writers an extra row per
-- event, written by a trigger: 15-17 us per single-event statement and 4.5 us per event of a
-- 1000-row statement (track_functions), about 6% and 9-13% of their server time, against a goal
-- of under 5%. Two columns and one index that grows at its right edge cost about 2% and 4%
-- (paired writes with and without them, bench/feed_latency.py).
--
-- feed_xid: the 64-bit id of the transaction that last wrote the row. A consumer's cursor is a
-- transaction snapshot (worker/feed.py): it has received the rows whose feed_xid that snapshot
-- sees as committed, so a transaction that began early and commits late is delivered when it
-- commits, and timestamps (back-dated imports) play no part. An update moves the row to the
-- updating transaction, which delivers it again with its new state (a soft delete arrives as the
-- row with is_deleted = true; users' consumers never get it: the table's RLS decides).
--
-- Rows written before this migration get feed_xid 1, which every real snapshot sees as
-- committed: they are delivered to a consumer reading from the beginning, and to nobody else.
alter table public.engagement_events add column feed_xid xid8 not null default '1';
alter table public.engagement_events alter column feed_xid set default pg_current_xact_id();
comment on column public.engagement_events.feed_xid is
  'Transaction that last wrote the row: the live feed''s position (worker/feed.py). Set by the '
  'database; clients cannot write it.';

-- feed_seq orders the rows of one transaction, so a consumer can stop part-way through a large
-- one and carry on from (feed_xid, feed_seq). Both grow with time, so new index entries land on
-- the rightmost leaf, where btree inserts skip the descent: measured against the same table
-- without the feed, 1000-row inserts cost the same within noise, where an index on
-- (feed_xid, id) (random ids inside a transaction) cost 3-4 us more per row. Per-session caching
-- keeps concurrent writers off one counter. Adding an identity column rewrites the table (under
-- an exclusive lock): on a large table, run this migration in a quiet window.
alter table public.engagement_events
  add column feed_seq bigint not null generated always as identity (cache 1000);
comment on column public.engagement_events.feed_seq is
  'Order of rows within their feed_xid, for the live feed. Set by the database.';

create index engagement_events_feed_idx on public.engagement_events (feed_xid, feed_seq);

-- Clients name the columns they write (PostgREST, the importer, the nudge scan all do), so
-- the feed's columns are left out of every write grant: nobody can hide a row from consumers,
-- or replay one, by choosing its position.
revoke insert, update on table public.engagement_events from authenticated, service_role;
grant insert (id, user_id, "timestamp", event_type, value, is_deleted)
  on table public.engagement_events to authenticated, service_role;
grant update (user_id, "timestamp", event_type, value, is_deleted)
  on table public.engagement_events to service_role;

-- An update moves the row to the updating transaction; it keeps its feed_seq, which is never
-- reused, so (feed_xid, feed_seq) stays unique. Row level (the new row is set before it is written); updates are the service's rare soft deletes and corrections, so the per-row call
-- costs nothing on the write path that matters. pg_catalog is named: the function runs as
-- whoever writes, with their search_path.
create function public.engagement_feed_stamp_update() returns trigger
language plpgsql
as $$
begin
  new.feed_xid := pg_catalog.pg_current_xact_id();
  return new;
end
$$;

create trigger engagement_feed_stamp_updates before update on public.engagement_events
  for each row execute function public.engagement_feed_stamp_update();

-- Wake-ups, unchanged in substance from 20261126100300. NOTIFY takes a cluster-wide lock from
-- pre-commit to the end of commit, serialising the commits of all transactions that notify, so
-- writers notify only when a consumer is waiting for one. A consumer with nothing left to read
-- takes this advisory lock exclusively (session level) before it waits; a writer's shared try
-- then fails, and it notifies. Under load consumers are busy reading, the try succeeds, and a
-- writer pays one lock check and no NOTIFY. The shared lock is held to commit, so a consumer
-- cannot start waiting while a writer that skipped the NOTIFY is still uncommitted: no wake-up is
-- missed. The payload is empty (consumers read the table); identical notifications in one
-- transaction fold into one. One call per statement, no transition table: a statement that wrote
-- nothing (ON CONFLICT DO NOTHING) may wake a consumer for an empty read, which is cheaper than
-- counting rows on every write. worker/queries/feed_wait_*.sql use the same key.
create function public.engagement_feed_wake_consumers() returns trigger
language plpgsql
as $$
begin
  if not pg_catalog.pg_try_advisory_xact_lock_shared(
           pg_catalog.hashtextextended('public.engagement_event_feed', 0)) then
    perform pg_catalog.pg_notify('engagement_event_feed', '');
  end if;
  return null;
end
$$;

create trigger engagement_feed_wake_after_inserts after insert on public.engagement_events
  for each statement execute function public.engagement_feed_wake_consumers();
create trigger engagement_feed_wake_after_updates after update on public.engagement_events
  for each statement execute function public.engagement_feed_wake_consumers();

revoke all on function public.engagement_feed_stamp_update() from public, anon, authenticated;
revoke all on function public.engagement_feed_wake_consumers() from public, anon, authenticated;

-- The log and what wrote it. Cursors issued over it are refused by worker/feed.py with a message
-- (the cursor format's version changed), rather than misread.
drop trigger engagement_feed_note_inserts on public.engagement_events;
drop trigger engagement_feed_note_updates on public.engagement_events;
drop function public.engagement_feed_note_changes();
drop table public.engagement_event_feed;

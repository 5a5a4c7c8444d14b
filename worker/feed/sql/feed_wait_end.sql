-- A consumer woken up (or giving up waiting): writers stop notifying once no consumer waits.
select pg_advisory_unlock(hashtextextended('public.engagement_event_feed', 0))

-- Realtime's stored broadcasts older than %(older_than)s, and those that carry an event older than
-- the retention cutoff (NULL: retention off); the function may delete them, the service role not.
select public.engagement_realtime_prune(%(older_than)s::timestamptz, %(events_before)s::timestamptz)

-- Event types the feed has something to deliver for: every type stored as activity so far
-- (engagement_last_activity, one row per user and type, with the log's unfolded tail: migration
-- 20261205100000) and the engine's reserved types.
select array(
  select event_type from public.engagement_last_activity
  union
  select event_type from public.engagement_activity_tail()
  union
  select unnest(public.engagement_reserved_event_types())
)

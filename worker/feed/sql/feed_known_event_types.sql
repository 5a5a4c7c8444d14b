-- Event types the feed has something to deliver for: every type stored as activity so far
-- (engagement_last_activity, one row per user and type) and the engine's reserved types.
select array(
  select event_type from public.engagement_last_activity
  union
  select unnest(public.engagement_reserved_event_types())
)

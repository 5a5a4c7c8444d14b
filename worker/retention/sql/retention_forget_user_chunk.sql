-- One chunk of a user's events, newest first from %(through)s down (the user's timeline index),
-- soft-deleted; returns how many and the oldest timestamp, where the next chunk starts.
with chunk as (
  select id, "timestamp"
  from public.engagement_events
  where user_id = %(user_id)s and not is_deleted and "timestamp" <= %(through)s::timestamptz
  order by "timestamp" desc
  limit %(limit)s
  for update
),
forgotten as (
  update public.engagement_events e
  set is_deleted = true
  from chunk
  where e.id = chunk.id
  returning chunk."timestamp"
)
select count(*), min("timestamp") from forgotten

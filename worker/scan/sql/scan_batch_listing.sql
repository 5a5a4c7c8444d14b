-- scan_batch.sql's output for a caller that lists the decisions: every row walked, in batch
-- order (the last is where the next batch starts), with the batch's written events by type on
-- each row.
select b.user_id, b.candidate, b.key_at, b.last_active_at, b.timezone, b.local_time, b.decision,
       b.hold_until, w.written
from budgeted b
cross join (
  select coalesce(jsonb_object_agg(x.event_type, x.n), '{}'::jsonb) as written
  from (select s.event_type, count(*) as n from sent s group by s.event_type) x
) w
order by b.key_at, b.user_id

-- scan_batch.sql's output for a scan: one row. `walked` rows were read (0: the rule is done),
-- the last of them is where the next batch starts (`after`, `after_at`), `decided` counts the
-- candidates by decision (after the budget), `written` the events written by type.
select (select count(*) from budgeted) as walked,
       l.user_id as after,
       l.key_at as after_at,
       (select coalesce(jsonb_object_agg(g.decision, g.n), '{}'::jsonb)
        from (select b.decision, count(*) as n from budgeted b where b.candidate group by b.decision) g
       ) as decided,
       (select coalesce(jsonb_object_agg(w.event_type, w.n), '{}'::jsonb)
        from (select s.event_type, count(*) as n from sent s group by s.event_type) w
       ) as written
from (select 1) as one
left join lateral (
  select b.user_id, b.key_at from budgeted b order by b.key_at desc nulls first, b.user_id desc limit 1
) l on true

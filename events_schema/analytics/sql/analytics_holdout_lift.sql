-- Did the nudge bring them back? Per rule with a holdout (docs/engine.md, "Holdout") and ISO
-- week (Monday 00:00 UTC) of [range_start, range_end), and over the whole range (week_start
-- NULL): the share of each arm that came back within 24 h and within 72 h of the decision, and
-- the difference (lift = nudged share - withheld share) with its 95 percent confidence interval.
--
--   nudged:   every nudge_sent of the rule that carries a holdout (value ? 'holdout_percent');
--   withheld: every nudge_withheld of the rule (the control arm, never nudged).
-- Both measured from the decision's timestamp (the scan's instant). The engine decides both arms
-- the same way (cool-down, quiet hours, rate limit) and the arm is a hash of the user id, so the
-- two arms are random halves (or shares) of the same due users: the lift is the nudge's effect.
-- Rows are per experiment (holdout_salt, holdout_percent), so a re-drawn or resized holdout is
-- never mixed with the old one.
--
-- One member per user and experiment: the user's FIRST decision of it (in the week it was made).
-- Later decisions are left out because the nudge changes them: a user the nudge brought back
-- lapses again and is decided again, a withheld user who stayed away is not, so counting every
-- decision would fill the nudged arm with re-lapses of users who return less, and pull the lift
-- down (the seeded demo shows it). One member per user also keeps the observations independent,
-- as the interval assumes. The first decision is counted where it was made (intention to
-- treat): a user who opts out after being nudged stays in the nudged arm.
--
-- "Came back" is activity as the rule counts it: not soft-deleted, not a reserved type, of the
-- rule's `event_types` when it narrows them, in (t, t + 24 h] / (t, t + 72 h]. A decision whose
-- window has not ended by as_of is left out of that window (`*_n` counts those in).
--
-- The interval is Newcombe's hybrid score interval for a difference of proportions (Newcombe
-- 1998, method 10), built from each arm's Wilson score interval, z = 1.959964 (95 percent): unlike the
-- textbook p1 - p2 +- z * se (Wald) it keeps its coverage for small arms and shares near 0 or 1,
-- and never leaves [-1, 1]. For p1 = x1/n1, p2 = x2/n2 with Wilson bounds (l1, u1), (l2, u2):
--   lower = (p1 - p2) - sqrt((p1 - l1)^2 + (u2 - p2)^2)
--   upper = (p1 - p2) + sqrt((u1 - p1)^2 + (p2 - l2)^2)
--   Wilson: (p + z^2/2n -+ z sqrt(p(1 - p)/n + z^2/4n^2)) / (1 + z^2/n)
-- With fewer than min_arm observed members in either arm, lift and interval are NULL and `note`
-- says 'not enough data' (docs/analytics.md: why 30).
--
-- Parameters: range_start, range_end, as_of (timestamptz; time comes from Python, not now()),
-- rules (jsonb: the configured NUDGE_RULES, for each rule's event_types), min_arm (int).
--
-- Plan: the decisions from the partial index engagement_events_nudge_decisions_idx; each return
-- check is a probe into engagement_events_user_id_timestamp_idx.
with bounds as (
  select date_trunc('week', %(range_start)s::timestamptz at time zone 'UTC') at time zone 'UTC' as range_start,
         %(range_end)s::timestamptz as range_end,
         %(as_of)s::timestamptz as as_of
),
rules as (
  select r.name, r.event_types
  from jsonb_to_recordset(%(rules)s::jsonb) as r (name text, event_types text[])
),
decisions as (
  select distinct on (d.value ->> 'rule', d.value ->> 'holdout_salt', d.value ->> 'holdout_percent', d.user_id)
         d.value ->> 'rule' as rule,
         d.value ->> 'holdout_salt' as holdout_salt,
         (d.value ->> 'holdout_percent')::double precision as holdout_percent,
         d.event_type = 'nudge_sent' as nudged,
         d.user_id,
         d."timestamp" as at
  from public.engagement_events d
  cross join bounds b
  where d.event_type in ('nudge_sent', 'nudge_withheld')
    and not d.is_deleted
    and d.value ? 'holdout_percent'
    and d."timestamp" < b.range_end
  order by d.value ->> 'rule', d.value ->> 'holdout_salt', d.value ->> 'holdout_percent', d.user_id, d."timestamp"
),
-- Materialized so that each decision's return check runs once per window.
outcomes as materialized (
  select date_trunc('week', d.at at time zone 'UTC') at time zone 'UTC' as week_start,
         d.rule, d.holdout_salt, d.holdout_percent, d.nudged, w.hours,
         d.at + w.hours * interval '1 hour' <= b.as_of as observed,
         d.at + w.hours * interval '1 hour' <= b.as_of and exists (
           select 1
             from public.engagement_events e
            where e.user_id = d.user_id
              and e."timestamp" > d.at
              and e."timestamp" <= d.at + w.hours * interval '1 hour'
              and not e.is_deleted
              and e.event_type <> all (public.engagement_reserved_event_types())
              and (r.event_types is null or e.event_type = any (r.event_types))) as came_back
  from decisions d
  cross join bounds b
  cross join (values (24), (72)) as w (hours)
  -- A user whose first decision came before the range is not a member of the range's weeks.
  left join rules r on r.name = d.rule
  where d.at >= b.range_start
),
arms as (
  select week_start, rule, holdout_salt, holdout_percent, hours,
         count(*) filter (where nudged) as nudged_members,
         count(*) filter (where not nudged) as withheld_members,
         count(*) filter (where nudged and observed) as n1,
         count(*) filter (where nudged and observed and came_back) as x1,
         count(*) filter (where not nudged and observed) as n2,
         count(*) filter (where not nudged and observed and came_back) as x2
  from outcomes
  group by grouping sets ((week_start, rule, holdout_salt, holdout_percent, hours),
                          (rule, holdout_salt, holdout_percent, hours))
),
shares as (
  -- An empty arm gives NULL shares and bounds, not a division by zero.
  select a.*, a.x1 / f.n1 as p1, a.x2 / f.n2 as p2, f.n1 as m1, f.n2 as m2,
         1.959963984540054::double precision as z
  from arms a
  cross join lateral (select nullif(a.n1, 0)::double precision as n1,
                             nullif(a.n2, 0)::double precision as n2) f
),
wilson as (
  select s.*,
         (s.p1 + s.z ^ 2 / (2 * s.m1) - s.z * sqrt(s.p1 * (1 - s.p1) / s.m1 + s.z ^ 2 / (4 * s.m1 ^ 2)))
           / (1 + s.z ^ 2 / s.m1) as l1,
         (s.p1 + s.z ^ 2 / (2 * s.m1) + s.z * sqrt(s.p1 * (1 - s.p1) / s.m1 + s.z ^ 2 / (4 * s.m1 ^ 2)))
           / (1 + s.z ^ 2 / s.m1) as u1,
         (s.p2 + s.z ^ 2 / (2 * s.m2) - s.z * sqrt(s.p2 * (1 - s.p2) / s.m2 + s.z ^ 2 / (4 * s.m2 ^ 2)))
           / (1 + s.z ^ 2 / s.m2) as l2,
         (s.p2 + s.z ^ 2 / (2 * s.m2) + s.z * sqrt(s.p2 * (1 - s.p2) / s.m2 + s.z ^ 2 / (4 * s.m2 ^ 2)))
           / (1 + s.z ^ 2 / s.m2) as u2,
         least(s.n1, s.n2) >= %(min_arm)s::int as enough
  from shares s
)
select week_start,
       rule,
       holdout_salt,
       holdout_percent,
       hours as window_hours,
       nudged_members,
       withheld_members,
       n1 as nudged_n,
       x1 as nudged_back,
       p1 as nudged_share,
       n2 as withheld_n,
       x2 as withheld_back,
       p2 as withheld_share,
       case when enough then p1 - p2 end as lift,
       case when enough then (p1 - p2) - sqrt((p1 - l1) ^ 2 + (u2 - p2) ^ 2) end as lift_low,
       case when enough then (p1 - p2) + sqrt((u1 - p1) ^ 2 + (p2 - l2) ^ 2) end as lift_high,
       case when enough then '' else 'not enough data' end as note
from wilson
order by week_start nulls last, rule, holdout_salt, holdout_percent, hours

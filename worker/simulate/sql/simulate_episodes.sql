-- The replay's input (worker/simulate/replay.py): for the rules that count the same event types
-- (%(event_types)s; null: every non-reserved type), every episode of every user that is due at
-- some beat of the window, one row per episode and rule, in user, rule and time order.
-- An episode is (user, rule, last active): last active is the sign-up time until the user's first
-- counted activity, then each counted activity's time until the next (docs/engine.md). So the
-- episodes are the user's timeline with the next point beside each (lead): one sort of the log,
-- shared by every rule (and both sides of a comparison) that counts the same types.
-- Beats are numbered from the window's start: the episode is due from beat due_k (the first at
-- or after last active + threshold) until beat end_k (the first at or after the next activity),
-- in whole microseconds, as the scan compares instants.
-- The log is read as it is now: a back-dated or soft-deleted event counts as if it had always
-- been so (docs/simulate.md).
-- Parameters: event_types, rule_keys int[], rule_names text[], thresholds interval[],
-- thresholds_us bigint[] (the same thresholds), shortest (the least of them), window_start,
-- last_beat, step_us, beats.
with counted as (
  select e.user_id, e."timestamp" as at
  from public.engagement_events e
  where e."timestamp" <= %(last_beat)s
    and not e.is_deleted
    and e.event_type <> all (public.engagement_reserved_event_types())
    and (%(event_types)s::text[] is null or e.event_type = any (%(event_types)s::text[]))
),
timeline as (
  -- Before the first activity (from the beginning of time) last active is the sign-up time.
  select u.user_id, '-infinity'::timestamptz as starts, u.signed_up_at as last_active
  from public.engagement_users u
  where u.signed_up_at <= %(last_beat)s
  union all
  select c.user_id, c.at, c.at
  from counted c
),
episodes as (
  select t.user_id, t.last_active, lead(t.starts) over (partition by t.user_id order by t.starts) as ends
  from timeline t
),
lapses as (
  -- Most of the timeline's gaps are shorter than any rule's threshold, or over before the
  -- window: dropped here, once, before each rule looks at what is left.
  select ep.user_id, ep.last_active, ep.ends
  from episodes ep
  where ep.ends is null
     or (ep.ends > %(window_start)s and ep.ends > ep.last_active + %(shortest)s::interval)
),
rules as materialized (
  select r.key, r.name, r.threshold, r.threshold_us
  from unnest(%(rule_keys)s::int[], %(rule_names)s::text[], %(thresholds)s::interval[], %(thresholds_us)s::bigint[])
    as r (key, name, threshold, threshold_us)
),
due as (
  -- Due by the last beat, and not over before the window starts or before it is due.
  select ep.user_id, ep.last_active, ep.ends, r.key, r.name, r.threshold_us
  from lapses ep
  cross join rules r
  where ep.last_active <= %(last_beat)s::timestamptz - r.threshold
    and (ep.ends is null or (ep.ends > %(window_start)s and ep.ends > ep.last_active + r.threshold))
),
beats as (
  select d.*,
         (extract(epoch from d.last_active) * 1000000)::bigint + d.threshold_us - w.start_us as due_off,
         (extract(epoch from d.ends) * 1000000)::bigint - w.start_us as end_off
  from due d
  cross join (select (extract(epoch from %(window_start)s::timestamptz) * 1000000)::bigint as start_us) w
),
numbered as (
  select b.*,
         case when b.due_off <= 0 then 0 else (b.due_off + %(step_us)s - 1) / %(step_us)s end as due_k,
         case when b.end_off is null then %(beats)s::bigint
              when b.end_off <= 0 then 0
              else least(%(beats)s::bigint, (b.end_off + %(step_us)s - 1) / %(step_us)s) end as end_k
  from beats b
)
select n.user_id,
       n.key,
       n.last_active,
       n.due_k::int,
       n.end_k::int,
       coalesce(u.timezone, 'UTC') as timezone,
       u.nudges_opt_out,
       -- The order a full scan of a rule counting every type walks its users in (NUDGE_MAX_PER_SCAN).
       (extract(epoch from coalesce(u.last_activity_at, u.signed_up_at)) * 1000000)::bigint as walk_us,
       -- The user's latest decision before the window (any rule), from the window's start: the
       -- cool-down it leaves.
       (select (extract(epoch from n2."timestamp") * 1000000)::bigint
               - (extract(epoch from %(window_start)s::timestamptz) * 1000000)::bigint
          from public.engagement_events n2
         where n2.event_type in ('nudge_sent', 'nudge_withheld') and n2.user_id = n.user_id
           and n2."timestamp" < %(window_start)s
         order by n2."timestamp" desc
         limit 1) as decided_off,
       -- This episode was decided before the window (the episode index's key).
       exists (
         select 1
           from public.engagement_events n3
          where n3.event_type in ('nudge_sent', 'nudge_withheld') and n3.user_id = n.user_id
            and n3.value ->> 'rule' = n.name
            and n3.value ->> 'last_active_at' = public.nudge_episode_time(n.last_active)
            and n3."timestamp" < %(window_start)s) as decided_before
from numbered n
join public.engagement_users u on u.user_id = n.user_id
where n.due_k < n.end_k
order by n.user_id, n.key, n.last_active

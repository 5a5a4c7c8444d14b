-- Nudge effectiveness per rule and ISO week (Monday 00:00 UTC) of [range_start, range_end):
-- the share of users who came back (had activity) within 24 h and within 72 h, for two groups:
--
--   nudged: every nudge_sent of the rule in the week, measured from the nudge's timestamp;
--   held:   every episode of the rule that became due in the week (last active + threshold;
--           docs/engine.md, "Definitions") but was NOT nudged within `grace` of becoming due:
--           held by quiet hours or the cool-down and nudged later, or never nudged because the
--           user came back first. Measured from the moment the episode became due.
--
-- Per nudged group, `delivered` / `delivery_failed` count the pushes that reached a device or
-- did not (nudge_delivered / nudge_failed, docs/delivery.md): a nudge that never reached the
-- phone cannot have caused a return, so compare shares knowing how many were delivered.
--
-- The held group is the comparison: users in the same lapse who did not get the nudge at that
-- moment, so a high share among the nudged is not mistaken for the nudge's doing when users come
-- back anyway. docs/analytics.md says what this can and cannot claim (the groups are not
-- randomised: held users lapsed at night or were nudged shortly before).
--
-- "Came back" is activity as the rule counts it: not soft-deleted, not a reserved type, and of
-- the rule's `event_types` when it narrows them, in (t, t + 24 h] / (t, t + 72 h]. A member whose
-- window has not ended by as_of is left out of that share (`*_observed` says how many are in),
-- never counted as "not back". Users who opted out of nudges are in neither group: they are never
-- nudged, so they are not comparable.
--
-- Parameters: range_start, range_end, as_of (timestamptz; time comes from Python, not now()),
-- rules (jsonb: [{"name", "threshold_hours", "event_types" (array or null)}], the configured
-- NUDGE_RULES), grace (interval: how late after becoming due a nudge still counts as prompt;
-- scans run every SCAN_INTERVAL_SECONDS, so twice that).
--
-- Plan: nudges come from the partial index engagement_events_nudges_idx; each return check is a
-- probe into engagement_events_user_id_timestamp_idx. The held group must find lapses, which
-- means reading each user's activity of the range (plus one threshold before it) in time order:
-- one range scan per user of engagement_events_user_id_timestamp_idx; the episode's nudge is a
-- probe into the unique index engagement_events_one_nudge_per_episode.
with bounds as (
  select date_trunc('week', %(range_start)s::timestamptz at time zone 'UTC') at time zone 'UTC' as range_start,
         %(range_end)s::timestamptz as range_end,
         %(as_of)s::timestamptz as as_of,
         -- As seconds: an interval of days would be added in the session's zone (23 or 25 h at DST).
         make_interval(secs => extract(epoch from %(grace)s::interval)) as grace
),
rules as (
  select r.name, r.threshold_hours * interval '1 hour' as threshold, r.event_types
  from jsonb_to_recordset(%(rules)s::jsonb) as r (name text, threshold_hours double precision, event_types text[])
),
nudged as (
  select n.value ->> 'rule' as rule, n.user_id, n."timestamp" as at, n.id as nudge_id
  from public.engagement_events n
  cross join bounds b
  join public.engagement_users u on u.user_id = n.user_id and not u.nudges_opt_out
  where n.event_type = 'nudge_sent'
    and not n.is_deleted
    and n.value ? 'rule'  -- a nudge_sent not written by the engine names no rule to compare
    and n."timestamp" >= b.range_start and n."timestamp" < b.range_end
),
-- Each user's possible "last active" moments near the range: the sign-up and every counted
-- event, each with the next counted event after it. A moment p opens an episode due at
-- p + threshold when nothing counted follows within the threshold.
moments as (
  select r.name as rule, r.threshold, u.user_id, p.at, p.next_at
  from rules r
  cross join bounds b
  join public.engagement_users u on not u.nudges_opt_out and u.signed_up_at < b.range_end - r.threshold
  cross join lateral (
    select m.at, lead(m.at) over (order by m.at) as next_at
    from (
      select u.signed_up_at as at
      union all
      select e."timestamp"
        from public.engagement_events e
       where e.user_id = u.user_id
         and e."timestamp" >= b.range_start - r.threshold
         and e."timestamp" < b.range_end
         and not e.is_deleted
         and e.event_type <> all (public.engagement_reserved_event_types())
         and (r.event_types is null or e.event_type = any (r.event_types))
    ) m
  ) p
),
held as (
  select m.rule, m.user_id, m.at + m.threshold as at
  from moments m
  cross join bounds b
  where m.at + m.threshold >= b.range_start and m.at + m.threshold < b.range_end
    and (m.next_at is null or m.next_at > m.at + m.threshold)
    -- An episode decided promptly either way (nudged, or withheld for a holdout's control arm,
    -- which analytics_holdout_lift.sql compares) is not "held".
    and not exists (
      select 1
        from public.engagement_events n
       where n.event_type in ('nudge_sent', 'nudge_withheld')
         and n.user_id = m.user_id
         and n.value ->> 'rule' = m.rule
         and n.value ->> 'last_active_at' = public.nudge_episode_time(m.at)
         and n."timestamp" <= m.at + m.threshold + b.grace)
),
members as (
  select 'nudged' as "group", rule, user_id, at, nudge_id from nudged
  union all
  select 'held', rule, user_id, at, null::uuid from held
),
-- Materialized so that each member's return check runs once, not once per aggregate below;
-- windows not over by as_of are not checked at all.
outcomes as materialized (
  select date_trunc('week', mb.at at time zone 'UTC') at time zone 'UTC' as week_start,
         mb.rule, mb."group", mb.at,
         w.hours,
         -- The push's outcome (docs/delivery.md), one per nudge; NULL: not delivered yet, or
         -- DELIVERY_PROVIDER=none. A probe into engagement_events_one_outcome_per_nudge.
         (select o.event_type
            from public.engagement_events o
           where o.event_type in ('nudge_delivered', 'nudge_failed')
             and o.value ->> 'nudge_id' = mb.nudge_id::text) as delivery,
         mb.at + w.hours * interval '1 hour' <= b.as_of as observed,
         mb.at + w.hours * interval '1 hour' <= b.as_of and exists (
           select 1
             from public.engagement_events e
            where e.user_id = mb.user_id
              and e."timestamp" > mb.at
              and e."timestamp" <= mb.at + w.hours * interval '1 hour'
              and not e.is_deleted
              and e.event_type <> all (public.engagement_reserved_event_types())
              and (r.event_types is null or e.event_type = any (r.event_types))) as came_back
  from members mb
  cross join bounds b
  cross join (values (24), (72)) as w (hours)
  left join rules r on r.name = mb.rule
)
select week_start,
       rule,
       "group",
       count(*) filter (where hours = 24) as members,
       count(*) filter (where hours = 24 and observed) as observed_24h,
       count(*) filter (where hours = 24 and observed and came_back) as back_24h,
       (count(*) filter (where hours = 24 and observed and came_back))::numeric
         / nullif(count(*) filter (where hours = 24 and observed), 0) as share_24h,
       count(*) filter (where hours = 72 and observed) as observed_72h,
       count(*) filter (where hours = 72 and observed and came_back) as back_72h,
       (count(*) filter (where hours = 72 and observed and came_back))::numeric
         / nullif(count(*) filter (where hours = 72 and observed), 0) as share_72h,
       -- Of the nudged: how many pushes reached a device, and how many did not (held: 0).
       count(*) filter (where hours = 24 and delivery = 'nudge_delivered') as delivered,
       count(*) filter (where hours = 24 and delivery = 'nudge_failed') as delivery_failed
from outcomes
group by week_start, rule, "group"
order by week_start, rule, "group" desc

-- The replay's input for one rule (worker/simulate/replay.py): every episode of every user that
-- is due at some instant up to the window's last beat and lasts into the window, in user order.
-- An episode is (user, rule, last active): last active is the sign-up time until the user's first
-- counted activity, then each counted activity's time until the next (docs/engine.md). So the
-- episodes are the user's timeline with the next point beside each (lead), one sort of the log.
-- The log is read as it is now: a back-dated or soft-deleted event counts as if it had always
-- been so (docs/simulate.md). Parameters: rule, event_types (null: every non-reserved type),
-- threshold (interval), window_start, last_beat.
with counted as (
  select distinct e.user_id, e."timestamp" as at
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
)
select ep.user_id,
       ep.last_active,
       ep.ends,
       coalesce(u.timezone, 'UTC') as timezone,
       u.nudges_opt_out,
       -- The order a full scan of a rule counting every type walks its users in (NUDGE_MAX_PER_SCAN).
       coalesce(u.last_activity_at, u.signed_up_at) as walk_at,
       -- The user's latest decision before the window (any rule): the cool-down at its start.
       (select n."timestamp"
          from public.engagement_events n
         where n.event_type in ('nudge_sent', 'nudge_withheld') and n.user_id = ep.user_id
           and n."timestamp" < %(window_start)s
         order by n."timestamp" desc
         limit 1) as decided_at,
       -- This episode was decided before the window (the episode index's key).
       exists (
         select 1
           from public.engagement_events n
          where n.event_type in ('nudge_sent', 'nudge_withheld') and n.user_id = ep.user_id
            and n.value ->> 'rule' = %(rule)s
            and n.value ->> 'last_active_at' = public.nudge_episode_time(ep.last_active)
            and n."timestamp" < %(window_start)s) as decided_before
from episodes ep
join public.engagement_users u on u.user_id = ep.user_id
where ep.last_active <= %(last_beat)s::timestamptz - %(threshold)s::interval
  and (ep.ends is null
       or (ep.ends > %(window_start)s and ep.ends > ep.last_active + %(threshold)s::interval))
order by ep.user_id, ep.last_active

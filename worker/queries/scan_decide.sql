-- The decision for one batch of candidates at as_of, from the event log itself.
-- Last active = latest counted, non-deleted event at or before as_of, else the sign-up time.
with facts as materialized (
  select c.user_id,
         u.nudges_opt_out,
         coalesce(u.timezone, 'UTC') as timezone,
         coalesce(latest."timestamp", u.signed_up_at) as last_active_at
  from unnest(%(user_ids)s::uuid[]) as c (user_id)
  join public.engagement_users u on u.user_id = c.user_id
  left join lateral (
    select e."timestamp"
      from public.engagement_events e
     where e.user_id = c.user_id
       and e."timestamp" <= %(as_of)s
       and not e.is_deleted
       and e.event_type <> all (public.engagement_reserved_event_types())
       and (%(event_types)s::text[] is null or e.event_type = any (%(event_types)s::text[]))
     order by e."timestamp" desc
     limit 1
  ) latest on true
),
judged as (
  select f.*,
         (%(as_of)s::timestamptz at time zone f.timezone) as local_at,
         (select max(n."timestamp") from public.engagement_events n
           where n.event_type = 'nudge_sent' and n.user_id = f.user_id
             and n."timestamp" <= %(as_of)s) as last_nudge_at
  from facts f
),
decided as (
  select j.*,
         case
           when j.last_active_at > %(cutoff)s then 'not_due'
           when j.nudges_opt_out then 'opted_out'
           when exists (
             select 1 from public.engagement_events n
              where n.event_type = 'nudge_sent' and n.user_id = j.user_id
                and n.value ->> 'rule' = %(rule)s
                and n.value ->> 'last_active_at' = public.nudge_episode_time(j.last_active_at))
             then 'already_nudged'
           when j.last_nudge_at > %(as_of)s::timestamptz - %(cooldown)s::interval then 'cooldown'
           when %(quiet_enabled)s and case
               when %(quiet_start)s::time > %(quiet_end)s::time
                 then j.local_at::time >= %(quiet_start)s::time or j.local_at::time < %(quiet_end)s::time
               else j.local_at::time >= %(quiet_start)s::time and j.local_at::time < %(quiet_end)s::time
             end
             then 'quiet_hours'
           else 'nudge'
         end as decision
  from judged j
)
-- A held user is due again when the hold ends: the cool-down after their last nudge, or the
-- next end of quiet hours in their own time zone.
select d.user_id,
       d.last_active_at,
       d.timezone,
       d.local_at::time as local_time,
       d.decision,
       case d.decision
         when 'cooldown' then d.last_nudge_at + %(cooldown)s::interval
         when 'quiet_hours' then
           (d.local_at::date + (d.local_at::time >= %(quiet_end)s::time)::int + %(quiet_end)s::time)
             at time zone d.timezone
       end as hold_until
from decided d
order by d.user_id

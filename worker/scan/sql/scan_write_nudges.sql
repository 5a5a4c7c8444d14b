-- One nudge event per due user, stamped with the scan's instant. The unique index on the
-- episode makes a second writer (an overlapping scan, a retried task) a no-op.
insert into public.engagement_events (user_id, "timestamp", event_type, value)
select n.user_id,
       %(as_of)s::timestamptz,
       'nudge_sent',
       jsonb_build_object(
         'rule', %(rule)s::text,
         'threshold_hours', %(threshold_hours)s::double precision,
         'last_active_at', public.nudge_episode_time(n.last_active_at),
         'scan_id', %(scan_id)s::text)
from unnest(%(user_ids)s::uuid[], %(last_active_ats)s::timestamptz[]) as n (user_id, last_active_at)
order by n.user_id
on conflict (user_id, (value ->> 'rule'), (value ->> 'last_active_at'))
  where event_type = 'nudge_sent'
  do nothing
returning user_id

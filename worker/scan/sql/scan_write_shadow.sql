-- One shadow record per would-be nudge of a shadow rule (docs/engine.md, "Shadow mode"): the
-- nudge the rule would have sent, stamped with the scan's instant and written as the nudge would
-- be (scan_write_nudges.sql), but as `nudge_shadow`: reserved, private, never sent or delivered.
-- Its own unique index (engagement_events_one_shadow_per_episode) makes a second writer (an
-- overlapping scan, a shard, a retried task) a no-op.
insert into public.engagement_events (user_id, "timestamp", event_type, value)
select n.user_id,
       %(as_of)s::timestamptz,
       'nudge_shadow',
       jsonb_build_object(
         'rule', %(rule)s::text,
         'threshold_hours', %(threshold_hours)s::double precision,
         'last_active_at', public.nudge_episode_time(n.last_active_at),
         'scan_id', %(scan_id)s::text,
         'mode', 'shadow')
from unnest(%(user_ids)s::uuid[], %(last_active_ats)s::timestamptz[]) as n (user_id, last_active_at)
order by n.user_id
on conflict (user_id, (value ->> 'rule'), (value ->> 'last_active_at'))
  where event_type = 'nudge_shadow'
  do nothing
returning event_type

-- The decision events of scan_batch.sql for a shadow rule (docs/engine.md, "Shadow mode"): one
-- record per would-be nudge, stamped with the scan's instant and written as the nudge would be
-- (scan_batch_sent.sql), but as `nudge_shadow`: reserved, private, never sent or delivered. Its
-- own unique index (engagement_events_one_shadow_per_episode) makes a second writer (an
-- overlapping scan, a shard, a retried task) a no-op.
sent as (
  insert into public.engagement_events (user_id, "timestamp", event_type, value)
  select b.user_id,
         %(as_of)s::timestamptz,
         'nudge_shadow',
         jsonb_build_object(
           'rule', %(rule)s::text,
           'threshold_hours', %(threshold_hours)s::double precision,
           'last_active_at', b.episode_key,
           'scan_id', %(scan_id)s::text,
           'mode', 'shadow')
  from budgeted b
  where b.candidate and b.decision = 'shadow'
  order by b.user_id
  on conflict (user_id, (value ->> 'rule'), (value ->> 'last_active_at'))
    where event_type = 'nudge_shadow'
    do nothing
  returning event_type
)

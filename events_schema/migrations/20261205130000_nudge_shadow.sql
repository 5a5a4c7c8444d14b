-- Shadow mode (docs/engine.md, "Shadow mode"): a rule with "mode": "shadow" decides on every
-- beat as a live rule would and records each nudge it would send as a `nudge_shadow` event, so a
-- proposed rule runs beside the live one on real traffic without reaching a single user. The
-- report sets its records against the live rules' decisions (analytics_shadow_vs_live.sql).

-- `nudge_shadow` is the engine's own event: reserved (users may not log it, it is never
-- activity) ...
create or replace function public.engagement_reserved_event_types() returns text[]
language sql immutable parallel safe set search_path = ''
as $$ select array['nudge_sent', 'nudge_delivered', 'nudge_failed', 'nudge_withheld', 'nudge_shadow']::text[] $$;

-- ... private: hidden from the user it is about by the restrictive policy "Users never see the
-- engine's private events" (so from the API, the feed as the user and postgres_changes) ...
create or replace function public.engagement_private_event_types() returns text[]
language sql immutable parallel safe set search_path = ''
as $$ select array['nudge_withheld', 'nudge_shadow']::text[] $$;

-- ... and never broadcast on the user's Realtime topic.
create or replace function public.engagement_realtime_private_event_types() returns text[]
language sql immutable parallel safe set search_path = ''
as $$ select array['nudge_delivered', 'nudge_failed', 'nudge_withheld', 'nudge_shadow']::text[] $$;

-- A user could log `nudge_shadow` before it was reserved: such rows stop counting as activity
-- now, so the summaries are brought back in line with the log.
do $$
begin
  if exists (select 1 from public.engagement_events where event_type = 'nudge_shadow') then
    perform public.rebuild_engagement_summaries();
  end if;
end
$$;

-- One shadow record per episode of a shadow rule, whichever scan, shard or retried task writes
-- it (inserts use ON CONFLICT DO NOTHING against this index). Apart from the live decisions'
-- index (engagement_events_one_nudge_per_episode): a shadow record never settles a live
-- episode, so a rule promoted from shadow to live nudges its open episodes as if it had never
-- been shadowed. The same index serves the shadow rule's own cool-down (its latest record for
-- the user: a few rows per user and rule at most).
create unique index engagement_events_one_shadow_per_episode
  on public.engagement_events (user_id, (value ->> 'rule'), (value ->> 'last_active_at'))
  where event_type = 'nudge_shadow';

-- The mode a rule was last scanned in: a rule whose mode changes gets a full scan (as for a
-- changed threshold), since its episodes and cool-down are now read from other events.
alter table public.nudge_scan_state
  add column mode text not null default 'live' check (mode in ('live', 'shadow'));

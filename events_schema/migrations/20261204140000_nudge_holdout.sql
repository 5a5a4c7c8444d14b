-- A randomised holdout per rule (docs/engine.md, "Holdout"): a due user in a rule's control arm
-- is not nudged; the engine records the decision as a `nudge_withheld` event instead, with the
-- same episode key and the same exactly-once guarantee as a nudge, so an analyst can compare
-- the two arms (events_schema/analytics/sql/analytics_holdout_lift.sql).

-- `nudge_withheld` is the engine's own event: reserved (users may not log it, it is never
-- activity) ...
create or replace function public.engagement_reserved_event_types() returns text[]
language sql immutable parallel safe set search_path = ''
as $$ select array['nudge_sent', 'nudge_delivered', 'nudge_failed', 'nudge_withheld']::text[] $$;

-- ... and private: never visible to the user it is about (through the API, the feed, Realtime),
-- since telling a user "we chose not to nudge you" would itself be a nudge.
create function public.engagement_private_event_types() returns text[]
language sql immutable parallel safe set search_path = ''
as $$ select array['nudge_withheld']::text[] $$;

revoke all on function public.engagement_private_event_types() from public;
grant execute on function public.engagement_private_event_types() to anon, authenticated, service_role;

-- Restrictive: AND-ed with every permissive select policy, present or future.
create policy "Users never see the engine's private events"
  on public.engagement_events as restrictive for select to authenticated
  using (event_type <> all (public.engagement_private_event_types()));

-- A user could log `nudge_withheld` before it was reserved: such rows stop counting as activity
-- now, so the summaries are brought back in line with the log.
do $$
begin
  if exists (select 1 from public.engagement_events where event_type = 'nudge_withheld') then
    perform public.rebuild_engagement_summaries();
  end if;
end
$$;

-- One decision per episode: a nudge or a withheld nudge, never both, never two.
drop index public.engagement_events_one_nudge_per_episode;
create unique index engagement_events_one_nudge_per_episode
  on public.engagement_events (user_id, (value ->> 'rule'), (value ->> 'last_active_at'))
  where event_type in ('nudge_sent', 'nudge_withheld');

-- A user's latest decision, sent or withheld, for the cool-down (both arms see the same timing).
create index engagement_events_nudge_decisions_idx
  on public.engagement_events (user_id, "timestamp" desc)
  where event_type in ('nudge_sent', 'nudge_withheld');

-- A user's arm for a rule: bucket 0..9999 from the first 60 bits of
-- sha256(salt || '/' || rule || '/' || user id as text); the user is in the control arm when
-- bucket < holdout_percent * 100. A function of the user, the rule and the salt only (not of
-- the scan, the shard, the worker or the time); a new salt re-draws the groups. In Python:
--   int(hashlib.sha256(f"{salt}/{rule}/{user_id}".encode()).hexdigest()[:15], 16) % 10000
create function public.engagement_holdout_bucket(salt text, rule text, user_id uuid) returns int
language sql immutable strict parallel safe set search_path = ''
as $$
  select (('x' || left(encode(pg_catalog.sha256(pg_catalog.convert_to(salt || '/' || rule || '/' || user_id::text,
                                                                        'UTF8')), 'hex'), 15))::bit(60)::bigint
          % 10000)::int
$$;

revoke all on function public.engagement_holdout_bucket(text, text, uuid) from public, anon, authenticated;
grant execute on function public.engagement_holdout_bucket(text, text, uuid) to service_role;

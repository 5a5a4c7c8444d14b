-- What the nudge engine needs beside the event log. The engine runs as service_role and never
-- reads the `auth` schema (Supabase does not promise it grants on it): a trigger keeps the
-- engine's projection of auth.users, Supabase's documented "profiles" pattern.

-- The engine's view of a user: sign-up time (last-active for a user with no activity), the
-- time zone for quiet hours and the opt-out, from raw_user_meta_data as the app writes it.
create table public.engagement_users (
  user_id uuid primary key references auth.users (id) on delete cascade,
  signed_up_at timestamptz not null,
  timezone text,  -- a name PostgreSQL knows, or NULL for UTC
  nudges_opt_out boolean not null default false
);
alter table public.engagement_users enable row level security;
create index engagement_users_signed_up_at_idx on public.engagement_users (signed_up_at);

-- The user's IANA time zone name if PostgreSQL knows it, else NULL (the engine then uses UTC).
-- Checked once when the user is written, since pg_timezone_names costs ~100 ms per read.
create function public.valid_time_zone(tz text) returns text
language plpgsql stable set search_path = ''
as $$
begin
  -- Names only: POSIX specs such as 'UTC+3' parse too, with the sign inverted.
  if tz is null or tz !~ '^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$' then
    return null;
  end if;
  perform now() at time zone tz;
  return tz;
exception when invalid_parameter_value then
  return null;
end
$$;

create function public.sync_engagement_users() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.engagement_users as u (user_id, signed_up_at, timezone, nudges_opt_out)
  select id, created_at, public.valid_time_zone(raw_user_meta_data ->> 'timezone'),
         coalesce(raw_user_meta_data ->> 'nudges_opt_out' = 'true', false)
  from changed_users
  on conflict (user_id) do update
    set signed_up_at = excluded.signed_up_at,
        timezone = excluded.timezone,
        nudges_opt_out = excluded.nudges_opt_out;
  return null;
end
$$;
create trigger sync_engagement_users_on_insert after insert on auth.users
  referencing new table as changed_users
  for each statement execute function public.sync_engagement_users();
create trigger sync_engagement_users_on_update after update on auth.users
  referencing new table as changed_users
  for each statement execute function public.sync_engagement_users();

insert into public.engagement_users (user_id, signed_up_at, timezone, nudges_opt_out)
select id, created_at, public.valid_time_zone(raw_user_meta_data ->> 'timezone'),
       coalesce(raw_user_meta_data ->> 'nudges_opt_out' = 'true', false)
from auth.users
on conflict (user_id) do nothing;

-- Latest activity per (user, event type), kept by triggers. It only nominates candidates for a
-- scan (who may have crossed a threshold since the last one); the decision itself is always
-- re-checked against engagement_events. Reserved (engine) types and soft-deleted rows are left out.
create table public.engagement_last_activity (
  user_id uuid not null,
  event_type text not null,
  last_at timestamptz not null,
  primary key (user_id, event_type)
);
alter table public.engagement_last_activity enable row level security;
create index engagement_last_activity_last_at_idx on public.engagement_last_activity (last_at);

insert into public.engagement_last_activity (user_id, event_type, last_at)
select user_id, event_type, max("timestamp")
from public.engagement_events
where not is_deleted and event_type <> all (public.engagement_reserved_event_types())
group by user_id, event_type;

create function public.note_inserted_activity() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.engagement_last_activity as a (user_id, event_type, last_at)
  select user_id, event_type, max("timestamp")
  from inserted_events
  where not is_deleted and event_type <> all (public.engagement_reserved_event_types())
  group by user_id, event_type
  order by user_id, event_type  -- one lock order for concurrent writers
  on conflict (user_id, event_type) do update
    set last_at = excluded.last_at
    where a.last_at < excluded.last_at;
  return null;
end
$$;

-- Updates (soft delete, corrections) and deletes can move the latest activity back:
-- recompute the affected (user, type) pairs from the event log.
create function public.refresh_last_activity(pairs_user_id uuid[], pairs_event_type text[])
returns void
language sql security definer set search_path = ''
as $$
  with pairs as (
    select distinct p.user_id, p.event_type
    from unnest(pairs_user_id, pairs_event_type) as p (user_id, event_type)
    where p.event_type <> all (public.engagement_reserved_event_types())
  ),
  fresh as (
    select p.user_id, p.event_type,
           (select e."timestamp" from public.engagement_events e
             where e.user_id = p.user_id and e.event_type = p.event_type and not e.is_deleted
             order by e."timestamp" desc limit 1) as last_at
    from pairs p
  ),
  gone as (
    delete from public.engagement_last_activity a
    using fresh f
    where a.user_id = f.user_id and a.event_type = f.event_type and f.last_at is null
  )
  insert into public.engagement_last_activity (user_id, event_type, last_at)
  select user_id, event_type, last_at from fresh where last_at is not null
  order by user_id, event_type
  on conflict (user_id, event_type) do update set last_at = excluded.last_at
$$;

create function public.note_changed_activity() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' then
    perform public.refresh_last_activity(array_agg(user_id), array_agg(event_type))
    from (select user_id, event_type from old_events
          union select user_id, event_type from new_events) as changed;
  else
    perform public.refresh_last_activity(array_agg(user_id), array_agg(event_type))
    from old_events;
  end if;
  return null;
end
$$;

create trigger note_inserted_activity after insert on public.engagement_events
  referencing new table as inserted_events
  for each statement execute function public.note_inserted_activity();
create trigger note_updated_activity after update on public.engagement_events
  referencing old table as old_events new table as new_events
  for each statement execute function public.note_changed_activity();
create trigger note_deleted_activity after delete on public.engagement_events
  referencing old table as old_events
  for each statement execute function public.note_changed_activity();

-- A nudge's `value ->> 'last_active_at'`, spelt one way (UTC, microseconds) so that the same
-- episode always gives the same key.
create function public.nudge_episode_time(last_active_at timestamptz) returns text
language sql immutable parallel safe set search_path = ''
as $$ select to_char(last_active_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

-- Exactly one nudge per episode (user, rule, last-active-at), whoever writes it and however
-- often: the scan inserts with ON CONFLICT DO NOTHING against this index.
create unique index engagement_events_one_nudge_per_episode
  on public.engagement_events (user_id, (value ->> 'rule'), (value ->> 'last_active_at'))
  where event_type = 'nudge_sent';
-- A user's latest nudge, for the cool-down, without walking the whole timeline.
create index engagement_events_nudges_idx
  on public.engagement_events (user_id, "timestamp" desc)
  where event_type = 'nudge_sent';

-- Users who were due but held (quiet hours, cool-down): the first incremental scan at or after
-- `hold_until` (the end of their quiet hours, of their cool-down) examines them again.
create table public.nudge_pending (
  rule text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  last_active_at timestamptz not null,
  reason text not null,
  since timestamptz not null,
  hold_until timestamptz not null,
  primary key (rule, user_id)
);
alter table public.nudge_pending enable row level security;
create index nudge_pending_rule_hold_until_idx on public.nudge_pending (rule, hold_until);

-- Per rule, the instant the last scan covered: the next scan only looks at who crossed since.
create table public.nudge_scan_state (
  rule text primary key,
  threshold_hours double precision not null,
  event_types text[],
  scanned_through timestamptz not null,
  full_scan_at timestamptz not null
);
alter table public.nudge_scan_state enable row level security;

-- The engine's tables have no user policies: only service_role (which bypasses RLS) uses them.
revoke all on table public.engagement_users, public.engagement_last_activity,
  public.nudge_pending, public.nudge_scan_state from public, anon, authenticated, service_role;
grant select, insert, update, delete on table public.engagement_users,
  public.engagement_last_activity, public.nudge_pending, public.nudge_scan_state to service_role;
grant execute on function public.nudge_episode_time(timestamptz) to service_role;
revoke all on function public.valid_time_zone(text), public.sync_engagement_users(), public.note_inserted_activity(),
  public.note_changed_activity(), public.refresh_last_activity(uuid[], text[])
  from public, anon, authenticated;

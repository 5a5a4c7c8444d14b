-- The engagement event log (PRD "Engagement Events Logging"): table, indexes, RLS, grants and
-- Supabase Realtime, together in one Supabase CLI migration. Runs unchanged on Supabase; on plain
-- PostgreSQL the runner first applies events_schema/sql/supabase_compat.sql.

-- Event types the system writes and users may not: the nudge engine's own events.
-- A user's reaction to a nudge (e.g. `nudge_opened`) is the user's own event and is not reserved.
create function public.engagement_reserved_event_types() returns text[]
language sql immutable parallel safe set search_path = ''
as $$ select array['nudge_sent', 'nudge_delivered', 'nudge_failed']::text[] $$;

create table public.engagement_events (
  id uuid primary key default gen_random_uuid(),
  -- Deleting the auth user erases their events (hard delete, GDPR erasure); `is_deleted` is the
  -- soft delete for retention and "forget me" requests that keep the auth account.
  user_id uuid not null references auth.users (id) on delete cascade,
  "timestamp" timestamptz not null default now(),
  event_type text not null
    constraint engagement_events_event_type_format check (event_type ~ '^[a-z][a-z0-9_]{0,62}$'),
  value jsonb not null default '{}'::jsonb
    constraint engagement_events_value_is_object check (jsonb_typeof(value) = 'object'),
  is_deleted boolean not null default false
);
alter table public.engagement_events enable row level security;

comment on table public.engagement_events is
  'Every behavioural touchpoint of a user (app opens, goals, imports, coach messages, nudges).';
comment on column public.engagement_events."timestamp" is 'When it happened, stored as UTC.';
comment on column public.engagement_events.is_deleted is
  'Soft delete: hidden from users by RLS and ignored by the nudge engine.';

-- A user's timeline, newest first: serves RLS-filtered reads and the engine's last-activity lookups.
create index engagement_events_user_id_timestamp_idx
  on public.engagement_events (user_id, "timestamp" desc);
-- jsonb_path_ops: payload queries here are containment (`value @> '{"source": "fitbit"}'`); it is
-- about a third the size of the default jsonb_ops and faster to maintain on a write-heavy table.
-- It does not serve the key-exists operators (?, ?|, ?&), which nothing here uses.
create index engagement_events_value_idx
  on public.engagement_events using gin (value jsonb_path_ops);

-- Policies are `to authenticated` with `(select auth.uid())`, evaluated once per statement.
create policy "Users can read their own events that are not deleted"
  on public.engagement_events for select to authenticated
  using ((select auth.uid()) = user_id and not is_deleted);

create policy "Users can log own events, not future-dated, not reserved types"
  on public.engagement_events for insert to authenticated
  with check (
    (select auth.uid()) = user_id
    and not is_deleted
    and "timestamp" <= now() + interval '5 minutes'
    and event_type <> all (public.engagement_reserved_event_types())
  );

-- Supabase's default privileges grant everything on new public tables to the API roles:
-- start from nothing and grant exactly what the policies allow. service_role bypasses RLS.
revoke all on table public.engagement_events from public, anon, authenticated, service_role;
grant select, insert on table public.engagement_events to authenticated;
grant select, insert, update, delete on table public.engagement_events to service_role;
revoke all on function public.engagement_reserved_event_types() from public;
grant execute on function public.engagement_reserved_event_types()
  to anon, authenticated, service_role;

-- Supabase Realtime streams new rows to the app, re-checking RLS per subscriber.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
alter publication supabase_realtime add table public.engagement_events;

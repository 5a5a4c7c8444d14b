-- Push delivery (issue 23): the app's device tokens, the dispatcher's place in the event feed,
-- and exactly one outcome (`nudge_delivered` or `nudge_failed`) per nudge, held by the database.

-- The app registers, refreshes and removes its own push tokens through the REST API
-- (PostgREST: POST/PATCH/DELETE /device_tokens). A token belongs to one user at a time; the app
-- deletes it on sign-out. The dispatcher (service_role) reads them and removes those the provider
-- calls unregistered or invalid.
create table public.device_tokens (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  token text not null
    constraint device_tokens_token_length check (length(token) between 1 and 4096),
  platform text not null
    constraint device_tokens_platform check (platform in ('android', 'ios', 'web')),
  last_seen_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  constraint device_tokens_token_key unique (token)
);
alter table public.device_tokens enable row level security;
-- A user's tokens, most recently seen first (the dispatcher's lookup; the policies' column leads).
create index device_tokens_user_id_idx on public.device_tokens (user_id, last_seen_at desc);

comment on table public.device_tokens is
  'Push tokens (FCM registration tokens) of the app''s installations, each owned by one user.';

create policy "Users can read their own device tokens"
  on public.device_tokens for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "Users can register device tokens for themselves"
  on public.device_tokens for insert to authenticated
  with check ((select auth.uid()) = user_id);
create policy "Users can refresh their own device tokens"
  on public.device_tokens for update to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);
create policy "Users can remove their own device tokens"
  on public.device_tokens for delete to authenticated
  using ((select auth.uid()) = user_id);

-- Start from nothing (Supabase's default privileges grant everything on new public tables).
-- Users write only the columns the app owns; ids and creation times are the database's.
revoke all on table public.device_tokens from public, anon, authenticated, service_role;
grant select, delete on table public.device_tokens to authenticated;
grant insert (user_id, token, platform, last_seen_at) on table public.device_tokens to authenticated;
grant update (token, platform, last_seen_at) on table public.device_tokens to authenticated;
grant select, insert, update, delete on table public.device_tokens to service_role;

-- The dispatcher's place in the feed, one row. Every nudge_sent before `feed_cursor` has its
-- outcome. A pass locks the row (select ... for update) for its transaction, so two dispatchers
-- never work at once; a transaction lock, not a session one, so it holds behind a transaction
-- pooler and dies with a killed worker's connection.
create table public.nudge_delivery_state (
  id boolean primary key default true
    constraint nudge_delivery_state_one_row check (id),
  feed_cursor text,  -- NULL until the first pass with a provider: it starts from that moment
  provider text,
  last_pass_at timestamptz,
  caught_up_at timestamptz,  -- the latest pass that found nothing left to send
  paused_until timestamptz,  -- provider down or asking to wait (Retry-After): no pass before
  pause_reason text
);
alter table public.nudge_delivery_state enable row level security;
insert into public.nudge_delivery_state (id) values (true);

-- The engine's table: no user policies, only service_role (which bypasses RLS).
revoke all on table public.nudge_delivery_state from public, anon, authenticated, service_role;
grant select, update on table public.nudge_delivery_state to service_role;

-- Exactly one outcome per nudge, whoever writes it and however often (the dispatcher inserts
-- with ON CONFLICT DO NOTHING against this index), as one nudge per episode is held above.
create unique index engagement_events_one_outcome_per_nudge
  on public.engagement_events ((value ->> 'nudge_id'))
  where event_type in ('nudge_delivered', 'nudge_failed');

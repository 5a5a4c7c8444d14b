-- What a Supabase database provides and the migrations rely on, recreated for plain PostgreSQL.
-- The runner applies this file only where the `auth` schema is absent: never on Supabase.
-- Idempotent: roles are cluster-wide, so another database of the same cluster may have made them.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  -- PostgREST logs in as `authenticator` and switches role per request.
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;
-- The migrating role (Supabase's `postgres`) may act as the API roles, as on Supabase.
grant anon, authenticated, service_role to current_user;
alter role authenticator set timezone to 'UTC';

grant usage on schema public to anon, authenticated, service_role;

-- Supabase keeps extensions in schema `extensions`, pgcrypto among them (the REST import's event
-- ids are UUIDv5, made with its SHA-1 digest()); the same here, from PostgreSQL's contrib.
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

-- GoTrue's auth.users, for the columns used here, as supabase/auth's migrations define them:
-- no defaults, everything but id nullable (GoTrue fills them, and makes the id, in Go; any other
-- writer may leave them NULL, so the tests meet what a real project holds).
--   id, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at:
--     00_init_auth_schema.up.sql (id uuid NOT NULL UNIQUE plus the primary key, email varchar(255))
--   deleted_at: 20221130112646_add_deleted_at.up.sql
--   is_sso_user, and email unique only among non-SSO users (the plain unique email dropped):
--     20221215195500_modify_users_email_unique_index.up.sql
create table if not exists auth.users (
  id uuid not null unique,
  email varchar(255),
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  created_at timestamptz,
  updated_at timestamptz,
  deleted_at timestamptz,
  is_sso_user boolean not null default false,
  constraint users_pkey primary key (id)
);
create unique index if not exists users_email_partial_key on auth.users (email) where (is_sso_user = false);

-- Supabase's helpers: read the transaction-local claims PostgREST sets; an empty setting
-- (what a pooled connection shows after a request's transaction ends) reads as NULL.
create or replace function auth.uid() returns uuid
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;

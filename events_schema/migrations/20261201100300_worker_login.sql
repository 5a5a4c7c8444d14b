-- The engine's own login, so the worker holds neither a superuser's nor the owner's credentials:
-- `engagement_worker` logs in, is no superuser, owns nothing, and has no privilege of its own but
-- reading which migrations are applied (for `python -m worker health`). It is a NOINHERIT member
-- of service_role: everything it does, it does after `set local role service_role`, as the engine
-- does in every transaction. The migrating role (the owner) creates it: on Supabase `postgres` has
-- CREATEROLE and, on PostgreSQL 16+, ADMIN OPTION on service_role, which is what this needs.
-- No password here: `python -m events_schema logins` sets it from WORKER_DATABASE_URL.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'engagement_worker') then
    create role engagement_worker login noinherit nosuperuser nocreatedb nocreaterole nobypassrls;
  end if;
exception
  -- Roles are cluster-wide: another database of this cluster created it at the same moment.
  when duplicate_object or unique_violation then null;
end
$$;
-- Whoever made it first (another database of this cluster, someone by hand), this is what it must
-- be. A non-superuser may not name SUPERUSER, BYPASSRLS or REPLICATION here, and cannot alter a
-- superuser at all, so a role of this name that is a superuser makes the migration fail.
alter role engagement_worker login noinherit nocreatedb nocreaterole;
grant service_role to engagement_worker;

-- Where the runner or the Supabase CLI records migrations (it exists before any migration runs).
do $$
begin
  if to_regclass('supabase_migrations.schema_migrations') is not null then
    grant usage on schema supabase_migrations to engagement_worker;
    grant select (version) on table supabase_migrations.schema_migrations to engagement_worker;
  end if;
end
$$;

-- Before seeding: is the schema in place, and does Supabase Auth (GoTrue) own auth.users?
-- GoTrue keeps its own tables beside users; the compatibility layer creates none of them.
select to_regclass('public.engagement_events') is not null as migrated,
       (to_regclass('auth.identities') is not null
        or to_regclass('auth.schema_migrations') is not null) as supabase_auth

-- Versions of the applied migrations, read as the engine's own login (granted to it directly,
-- migration 20261201100300), before any switch to the service role.
select version from supabase_migrations.schema_migrations

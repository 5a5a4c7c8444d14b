-- A user's scan shard: the last two bytes of the uuid modulo the shard count, the same as
-- worker/scan/shards.py shard_of. Every candidate query (worker/scan/sql/scan_candidates_*.sql)
-- filters by it, so the expression is written once.
--
-- A SQL-standard body (RETURN) and no `set search_path`: PostgreSQL inlines it into the query, so
-- the filter costs what the bare expression costs. A `set search_path` clause would stop the
-- inlining and make each call switch configuration: 20x slower over a million users (measured:
-- 3.3 s against 0.15 s). The body's names are bound when the function is created, so the
-- caller's search_path never reaches it; splinter's function_search_path_mutable, which only
-- looks for the setting, still lists it as a WARN (docs/supabase.md).
create function public.engagement_shard(user_id uuid, shards int) returns int
language sql immutable parallel safe
return (pg_catalog.get_byte(pg_catalog.uuid_send(user_id), 14) * 256
        + pg_catalog.get_byte(pg_catalog.uuid_send(user_id), 15)) % shards;

comment on function public.engagement_shard(uuid, int) is
  'The scan shard (0 .. shards - 1) of a user: the uuid''s last two bytes modulo shards.';

-- Functions are executable by PUBLIC by default: only the engine needs it.
revoke all on function public.engagement_shard(uuid, int) from public, anon, authenticated;
grant execute on function public.engagement_shard(uuid, int) to service_role;

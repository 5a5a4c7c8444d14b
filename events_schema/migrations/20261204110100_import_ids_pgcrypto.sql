-- The REST import's event ids with pgcrypto's digest() alone: the PL/pgSQL SHA-1 of migration
-- 20261201100200 (and the choice between the two) is gone. pgcrypto is in schema `extensions` on
-- Supabase and, on plain PostgreSQL, put there from contrib by events_schema/compat (and below,
-- for a database migrated before that).
--
-- Ids do not change: SHA-1 is SHA-1, so uuid5(EVENT_ID_NAMESPACE, '<batch_id>:<position>') is the
-- same bytes whichever function made it, and a batch imported before this migration and sent
-- again is all duplicates (tests/integration/ingest/test_import_ids.py imports a batch with the
-- PL/pgSQL SHA-1, migrates, and imports it again).
--
-- What stays emulated, and why: a batch sent without batch_id is identified by the SHA-256 of
-- its content as Python's json.dumps(..., sort_keys=True, separators=(",", ":")) writes it
-- (worker/ingest/sources.py batch_content_id), so engagement_import_python_json() remains.
-- jsonb::text cannot stand in for it: it writes ", " and ": ", orders keys by length before
-- bytes, keeps non-ASCII characters where Python writes \uXXXX, and writes numbers as they were
-- sent (1.0, 1e2) where Python writes repr(float) (1.0, 100.0). A different hash would give an
-- old batch re-sent without batch_id a new batch id, new event ids, and a second copy.
create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;

-- uuid5: the first 16 bytes of SHA-1(namespace || name), version 5 and the RFC 4122 variant.
create or replace function public.engagement_import_event_id(batch_id text, "position" bigint) returns uuid
language sql immutable strict parallel safe set search_path = ''
as $$
  select encode(set_byte(set_byte(h, 6, (get_byte(h, 6) & 15) | 80), 8, (get_byte(h, 8) & 63) | 128), 'hex')::uuid
  from (select substring(extensions.digest(
          '\x5b0a4f532f644d4e9a513c1e0c0d8f6e'::bytea || convert_to(batch_id || ':' || "position", 'UTF8'), 'sha1')
          from 1 for 16) as h) as hashed
$$;

drop function public.engagement_import_sha1(bytea);
drop function public.engagement_import_sha1_plpgsql(bytea);

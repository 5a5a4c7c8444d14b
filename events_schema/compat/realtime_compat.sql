-- What Supabase Realtime provides in the `realtime` schema and the migrations rely on, recreated
-- for plain PostgreSQL. The runner applies this file only where `realtime.messages` is absent:
-- never on Supabase, where Realtime's own tenant migrations made it.
-- Idempotent: roles are cluster-wide, so another database of the same cluster may have made them.
--
-- Taken from supabase/realtime's tenant migrations (lib/realtime/tenants/repo/migrations):
--   the role, realtime.topic(), realtime.send(), realtime.messages with its primary key, its index,
--   its grants and RLS: 20260420000000_squash_migrations.ex;
--   the default partition: 20260604120000_add_messages_default_partition.ex.
-- Where it differs: only the default partition (Realtime also makes one partition a day and its
-- janitor drops those older than 72 hours); no realtime.subscription, realtime.broadcast_changes,
-- realtime.send_binary or `broadcasted_at` column (nothing here uses them); no publication for
-- Realtime's replication (Realtime creates `supabase_realtime_messages_publication` itself).
-- Everything here uses IF NOT EXISTS or OR REPLACE as Realtime's migrations do, so a self-hosted
-- Realtime (docker-compose.yml) that starts after this layer migrates over it.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin with noinherit nologin noreplication;
  end if;
  -- supabase/postgres makes this role; Realtime's migrations revoke from it by name, so a
  -- self-hosted Realtime on the official postgres image needs it to exist.
  if not exists (select 1 from pg_roles where rolname = 'dashboard_user') then
    create role dashboard_user nologin;
  end if;
end
$$;
grant supabase_realtime_admin to current_user;

create schema if not exists realtime;
-- A self-hosted Realtime keeps its own tables here (DB_AFTER_CONNECT_QUERY in docker-compose.yml),
-- as supabase/postgres's init scripts prepare it.
create schema if not exists _realtime;

create or replace function realtime.topic() returns text
language sql stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;

create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone default now() not null,
  inserted_at timestamp without time zone default now() not null,
  id uuid default gen_random_uuid() not null
)
partition by range (inserted_at);

do $$
begin
  if not exists (select 1 from pg_constraint
                 where conname = 'messages_pkey' and connamespace = 'realtime'::regnamespace) then
    alter table realtime.messages add constraint messages_pkey primary key (id, inserted_at);
  end if;
end
$$;
create table if not exists realtime.messages_default partition of realtime.messages default;
create index if not exists messages_inserted_at_topic_index
  on realtime.messages using btree (inserted_at desc, topic)
  where ((extension = 'broadcast'::text) and (private is true));

-- Realtime's own, unchanged: sets realtime.topic for the transaction, inserts one row, swallows
-- any error as a WARNING.
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
    end if;
    execute format('SET LOCAL realtime.topic TO %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception
    when others then
      raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

grant usage on schema realtime to anon, authenticated, service_role, supabase_realtime_admin;
grant usage on schema realtime to current_user;
grant create on schema realtime to supabase_realtime_admin;
-- A new owner needs CREATE on the schema (granted just above) unless a superuser runs this.
alter table realtime.messages owner to supabase_realtime_admin;
alter function realtime.topic() owner to supabase_realtime_admin;

grant all on all tables in schema realtime to supabase_realtime_admin;
grant all on all functions in schema realtime to supabase_realtime_admin;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;
grant select, insert, update, delete, truncate, references, trigger on realtime.messages to current_user;

alter table realtime.messages enable row level security;

-- Issue 22: each user's new events reach their app through Supabase Realtime's Broadcast from the
-- database, on a private topic of their own (`user:<uuid>`), authorised by RLS on
-- realtime.messages. postgres_changes re-checks RLS once per subscriber per change on one thread
-- (Supabase measured p95 616-920 ms at 3,000 clients and 5 changes/s); Broadcast from the
-- database measured p95 132 ms at 80,000 users. docs/feed.md has the client side.
--
-- Needs Supabase's realtime schema (on plain PostgreSQL: events_schema/compat/realtime_compat.sql).
--
-- One message per user per statement, not per row: an import of 1,000 rows for one user is one
-- message (the count, the newest 20 rows, `truncated`), so bulk writes flood neither the channel
-- nor the writer. The rows go in with one set-based INSERT into realtime.messages, the row
-- realtime.send() would insert (topic, extension 'broadcast', event, payload with an `id`,
-- private): Realtime broadcasts every row inserted into that table (it streams the table's
-- inserts through its own publication), however it was inserted. Calling realtime.send() once
-- per user would run a PL/pgSQL block and a SET LOCAL per user, and it swallows every error as a
-- WARNING, so a failure there would lose messages silently.

-- Event types never broadcast: the engine's bookkeeping, which the app has no use for, and
-- `nudge_withheld` (a nudge the holdout group did not get: the app must never learn of it).
-- Extend the list with CREATE OR REPLACE; the trigger reads it on every statement.
create function public.engagement_realtime_private_event_types() returns text[]
language sql immutable parallel safe set search_path = ''
as $$ select array['nudge_delivered', 'nudge_failed', 'nudge_withheld']::text[] $$;

-- The switch (a database setting, read on each statement):
--   alter database <db> set engagement.realtime_mode = 'postgres_changes';  -- no broadcasts
-- 'broadcast' (the default, also when unset) and 'both' send them; 'postgres_changes' does not.
-- engagement_events stays in the supabase_realtime publication in every mode, as before.
create function public.engagement_realtime_broadcast() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if current_setting('engagement.realtime_mode', true) = 'postgres_changes' then
    return null;
  end if;
  -- One sort of the statement's rows by user, newest first; the 20 newest of each user are
  -- built into JSON, the others only counted.
  insert into realtime.messages (id, topic, extension, event, payload, private, inserted_at, updated_at)
  select m.id, 'user:' || m.user_id, 'broadcast', m.event,
         jsonb_build_object('id', m.id, 'count', m.n, 'truncated', m.n > 20, 'events', m.events),
         true, m.at, m.at
  from (
    select gen_random_uuid() as id, r.user_id, count(*) as n,
           case when bool_and(r.event_type = 'nudge_sent') then 'nudge' else 'events' end as event,
           jsonb_agg(jsonb_build_object('id', r.id, 'timestamp', r."timestamp",
                                        'event_type', r.event_type, 'value', r.value)
                     order by r.rank) filter (where r.rank <= 20) as events,
           -- Realtime stamps its rows in UTC (its janitor and latency figures assume it).
           (now() at time zone 'UTC') as at
    from (
      select e.id, e.user_id, e."timestamp", e.event_type, e.value,
             row_number() over (partition by e.user_id order by e."timestamp" desc, e.id desc) as rank
      from inserted_events e
      where not e.is_deleted
        and e.event_type <> all (public.engagement_realtime_private_event_types())
    ) r
    group by r.user_id
  ) m;
  return null;
end
$$;

create trigger engagement_realtime_broadcast after insert on public.engagement_events
  referencing new table as inserted_events
  for each statement execute function public.engagement_realtime_broadcast();

-- Receiving: a signed-in user may join (and receive on) their own topic and no other. Realtime
-- checks a private channel by reading realtime.messages as the user, with realtime.topic() set
-- to the channel's topic. No INSERT policy: clients cannot send on any topic, nor track presence.
create policy "Users can receive broadcasts on their own user topic only"
  on realtime.messages for select to authenticated
  using (
    extension = 'broadcast'
    and topic = 'user:' || (select auth.uid())::text
    and topic = (select realtime.topic())
  );

-- Erasure and retention run as the service role, which may not delete from realtime.messages.
-- Deleting the auth user drops their messages with their events.
create function public.engagement_realtime_forget_users() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from realtime.messages m using deleted_users d where m.topic = 'user:' || d.id::text;
  return null;
end
$$;
create trigger engagement_realtime_forget_users after delete on auth.users
  referencing old table as deleted_users
  for each statement execute function public.engagement_realtime_forget_users();

-- forget_user: the user's messages go as their events are soft-deleted.
create function public.engagement_realtime_forget_user(forgotten uuid) returns bigint
language sql security definer set search_path = ''
as $$
  with gone as (delete from realtime.messages where topic = 'user:' || forgotten::text returning 1)
  select count(*) from gone
$$;

-- apply_retention: messages older than `older_than` (Supabase's Realtime keeps 72 hours), and,
-- when event retention is on, every message that carries an event older than its cutoff.
create function public.engagement_realtime_prune(older_than timestamptz, events_before timestamptz)
returns bigint
language sql security definer set search_path = ''
as $$
  with gone as (
    delete from realtime.messages m
    where m.inserted_at < (older_than at time zone 'UTC')
       or (events_before is not null
           and m.extension = 'broadcast'
           and m.topic like 'user:%'
           and exists (select 1 from jsonb_array_elements(m.payload -> 'events') as e
                       where (e ->> 'timestamp')::timestamptz < events_before))
    returning 1
  )
  select count(*) from gone
$$;

revoke all on function public.engagement_realtime_private_event_types() from public, anon;
grant execute on function public.engagement_realtime_private_event_types() to authenticated, service_role;
revoke all on function public.engagement_realtime_broadcast() from public, anon, authenticated;
revoke all on function public.engagement_realtime_forget_users() from public, anon, authenticated;
revoke all on function public.engagement_realtime_forget_user(uuid) from public, anon, authenticated;
grant execute on function public.engagement_realtime_forget_user(uuid) to service_role;
revoke all on function public.engagement_realtime_prune(timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.engagement_realtime_prune(timestamptz, timestamptz) to service_role;

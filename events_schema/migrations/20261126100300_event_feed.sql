-- The live event feed (worker/feed.py, `python -m worker tail`): a commit-ordered, lossless,
-- resumable log of changes to engagement_events without logical decoding, so it works at
-- wal_level=replica, on the embedded server and on Supabase alike.
--
-- Every inserted or updated event gets one entry stamped with the 64-bit id of the transaction
-- that wrote it. A consumer's cursor is a transaction snapshot (PgQ's technique): it has received
-- exactly the entries of the transactions that snapshot sees as committed. Each fetch takes a new
-- snapshot and reads the entries visible in it but not in the cursor's, that is, of the
-- transactions that committed in between, whatever their start order or timestamps. A long
-- transaction that began before others and commits last is delivered when it commits, never
-- skipped, and it holds nobody else back.
--
-- Entries carry ids, not event data: consumers join them to engagement_events, so the event's own
-- RLS policies decide what a user's consumer sees, soft-deleted rows included.

create table public.engagement_event_feed (
  xid xid8 not null default pg_current_xact_id(),
  -- Orders entries within a transaction; the per-session cache keeps writers off one counter.
  seq bigint generated always as identity (cache 100),
  event_id uuid not null,
  -- 'insert' or 'update'. No check constraint: only the triggers below write here, and a check
  -- is compiled for every statement that inserts, a measurable share of this table's write cost.
  op text not null,
  primary key (xid, seq)
);
alter table public.engagement_event_feed enable row level security;

comment on table public.engagement_event_feed is
  'Change log of engagement_events for the live feed, keyed by writing transaction. Ids only: '
  'event data is read from engagement_events under its RLS. Hard deletes are not logged.';

-- No foreign key (a per-row key check would cost writers more than the entry itself) and no
-- user id: an entry of a hard-deleted event matches nothing and says nothing about anyone, so
-- erasing a user (cascading to their events) leaves no personal data here.

-- A user sees the entries of the events they can see, decided by engagement_events' own policies
-- (which apply inside this subquery): own, not soft-deleted. Nothing of other users leaks.
create policy "Users can read the feed entries of events they can read"
  on public.engagement_event_feed for select to authenticated
  using (exists (select 1 from public.engagement_events e where e.id = event_id));

-- Writers never touch the feed directly: the triggers below write it as the table owner.
-- service_role may delete entries, to prune what every consumer has passed.
revoke all on table public.engagement_event_feed from public, anon, authenticated, service_role;
grant select on table public.engagement_event_feed to authenticated;
grant select, delete on table public.engagement_event_feed to service_role;

-- Statement-level triggers: one INSERT ... SELECT per statement, not a call per row.
--
-- Wake-ups. NOTIFY takes a cluster-wide lock from pre-commit to the end of commit, serialising
-- the commits of all transactions that notify, so writers notify only when a consumer is waiting
-- for one. A consumer with nothing left to read takes this advisory lock exclusively (session
-- level) before it waits; a writer's shared try then fails, and it notifies. Under load consumers
-- are busy reading and re-reading every few milliseconds, the try succeeds, and a writer pays
-- one lock check and no NOTIFY. The shared lock is held to commit, so a consumer cannot start
-- waiting while a writer that skipped the NOTIFY is still uncommitted: no wake-up is missed.
-- The payload is empty (consumers read the feed itself); identical notifications in one
-- transaction fold into one; a statement that wrote nothing (ON CONFLICT DO NOTHING, as the nudge
-- scan inserts) wakes nobody. worker/queries/feed_wait_*.sql use the same key.
-- Updates (soft deletes, corrections by the service) are delivered as `update` with the row as
-- it is when read; a user's consumer never receives a soft-deleted row (the RLS above).
create function public.engagement_feed_note_changes() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  logged bigint;
begin
  insert into public.engagement_event_feed (event_id, op)
  select id, lower(tg_op) from changed_events;
  get diagnostics logged = row_count;
  if logged > 0
     and not pg_try_advisory_xact_lock_shared(hashtextextended('public.engagement_event_feed', 0)) then
    perform pg_notify('engagement_event_feed', '');
  end if;
  return null;
end
$$;

create trigger engagement_feed_note_inserts after insert on public.engagement_events
  referencing new table as changed_events
  for each statement execute function public.engagement_feed_note_changes();
create trigger engagement_feed_note_updates after update on public.engagement_events
  referencing new table as changed_events
  for each statement execute function public.engagement_feed_note_changes();

revoke all on function public.engagement_feed_note_changes() from public, anon, authenticated;

-- Issue 21: the engine's summaries leave the writer's path. Inserts no longer touch
-- engagement_last_activity or engagement_users.last_activity_at (a per-type upsert and a non-HOT
-- update of the user's row per statement, about a third of a 1,000-row batch's time at 100k users:
-- docs/scaling.md, "The write path"). An inserted row only carries its feed position, which it has
-- always had (feed_xid, the writing transaction, migration 20261126100400). A set-based fold,
-- public.fold_engagement_summaries(), raises both summaries from the rows written since the last
-- fold's watermark, called by every scan before it decides and by the beat's own task.
--
-- The watermark is a transaction id below which every transaction had finished when the fold
-- read the log (the xmin of its snapshot): a transaction that began before a fold and commits
-- after it has an id at or past the watermark, so the next fold still reads its rows. Rows at or
-- past the watermark are the unfolded tail; public.engagement_activity_tail() reads it by the
-- feed's index (engagement_events_feed_idx), and everything that decides (the scan's candidate and
-- decide queries) or checks (drift, rebuild) merges it with the summaries. Summaries and tail
-- together are the log's latest activity at every instant, folded or not.
--
-- Updates, deletes and TRUNCATE keep their triggers (rare: the service's soft deletes and
-- corrections, erasure, retention). They recompute the pairs they touch from the log, which sets
-- a summary row to the log's own value; the tail only ever raises (it is a max over rows the log
-- has), so merging stays exact. A fold and a recompute never run at once: the recompute holds
-- this advisory lock shared until its transaction ends, and a fold takes it exclusively or skips
-- (nothing is lost by a skipped fold: its rows stay in the tail). Without it, a fold reading a row
-- that a concurrent soft delete had not yet committed could raise a summary past the log.

create table public.engagement_summary_fold (
  id boolean primary key default true check (id),  -- one row
  -- Every transaction with a smaller id had finished when the last fold read the log.
  folded_below xid8 not null
);
alter table public.engagement_summary_fold enable row level security;
comment on table public.engagement_summary_fold is
  'Watermark of the engine''s summaries: rows of engagement_events whose feed_xid is below '
  'folded_below are in engagement_last_activity and engagement_users.last_activity_at; the rest '
  'are read from the log (public.engagement_activity_tail()). Written by public.fold_engagement_summaries().';

-- Only the engine reads it (service_role bypasses RLS); nobody writes it but the fold.
revoke all on table public.engagement_summary_fold from public, anon, authenticated, service_role;
grant select on table public.engagement_summary_fold to service_role;

-- Drop the insert trigger first: it locks engagement_events, so every transaction that still
-- inserts with it has finished, and one that inserts afterwards has an id at or past this
-- statement's snapshot's xmin, the starting watermark.
drop trigger note_inserted_activity on public.engagement_events;
drop function public.note_inserted_activity();
insert into public.engagement_summary_fold (folded_below) values (pg_snapshot_xmin(pg_current_snapshot()));

-- The unfolded tail: latest counted activity per (user, type) among rows at or past the
-- watermark. EXECUTE plans with the watermark's value, so the planner sees how few rows are
-- past it (a generic plan would guess a third of the log and read all of it).
create function public.engagement_activity_tail()
returns table (user_id uuid, event_type text, last_at timestamptz)
language plpgsql stable security definer set search_path = '' rows 100
as $$
begin
  return query execute
    'select e.user_id, e.event_type, max(e."timestamp")
       from public.engagement_events e
      where e.feed_xid >= $1
        and not e.is_deleted
        and e.event_type <> all (public.engagement_reserved_event_types())
      group by e.user_id, e.event_type'
    using (select f.folded_below from public.engagement_summary_fold f);
end
$$;

-- The lock key shared by the fold (exclusive), the rebuild (exclusive) and the recomputes of
-- updates and deletes (shared).
create function public.engagement_summary_lock_key() returns bigint
language sql immutable parallel safe set search_path = ''
as $$ select hashtextextended('public.engagement_summary_fold', 0) $$;

-- Raise both summaries from the tail and move the watermark to what had finished. Returns the
-- number of (user, type) rows it read from the tail, or NULL when another fold (or a recompute,
-- or a rebuild) holds the lock and it did nothing. Idempotent: folding a row twice changes
-- nothing (a summary only rises to a larger value).
create function public.fold_engagement_summaries() returns bigint
language plpgsql security definer set search_path = ''
as $$
declare
  since xid8;
  horizon xid8;
  folded bigint;
begin
  if not pg_try_advisory_xact_lock(public.engagement_summary_lock_key()) then
    return null;
  end if;
  select f.folded_below into since from public.engagement_summary_fold f for update;
  -- Taken before the tail is read: every transaction below it has finished, so the next
  -- statement's snapshot sees all of their rows.
  horizon := pg_snapshot_xmin(pg_current_snapshot());

  create temporary table if not exists pg_temp.engagement_fold_tail
    (user_id uuid, event_type text, last_at timestamptz) on commit drop;
  truncate pg_temp.engagement_fold_tail;
  execute
    'insert into pg_temp.engagement_fold_tail
     select e.user_id, e.event_type, max(e."timestamp")
       from public.engagement_events e
      where e.feed_xid >= $1
        and not e.is_deleted
        and e.event_type <> all (public.engagement_reserved_event_types())
      group by e.user_id, e.event_type'
    using since;
  get diagnostics folded = row_count;

  if folded > 0 then
    -- Rows are locked in key order, as the insert trigger did: one order for every writer.
    insert into public.engagement_last_activity as a (user_id, event_type, last_at)
    select t.user_id, t.event_type, t.last_at
    from pg_temp.engagement_fold_tail t
    order by t.user_id, t.event_type
    on conflict (user_id, event_type) do update
      set last_at = excluded.last_at
      where a.last_at < excluded.last_at;

    with latest as (
      select t.user_id, max(t.last_at) as last_at from pg_temp.engagement_fold_tail t group by t.user_id
    ),
    raised as (
      select u.ctid as row_id, l.last_at
      from public.engagement_users u
      join latest l on l.user_id = u.user_id
      where u.last_activity_at is null or u.last_activity_at < l.last_at
      order by u.user_id
      for update of u
    )
    update public.engagement_users u
    set last_activity_at = r.last_at
    from raised r
    where u.ctid = r.row_id;
  end if;

  update public.engagement_summary_fold set folded_below = greatest(since, horizon);
  return folded;
end
$$;

-- Updates and deletes: as before (recompute the touched pairs from the log), after taking the
-- fold's lock shared, held to the end of the transaction.
create or replace function public.note_changed_activity() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform pg_advisory_xact_lock_shared(public.engagement_summary_lock_key());
  if tg_op = 'UPDATE' then
    perform public.refresh_last_activity(array_agg(user_id), array_agg(event_type))
    from (select user_id, event_type from old_events
          union select user_id, event_type from new_events) as changed;
  else
    perform public.refresh_last_activity(array_agg(user_id), array_agg(event_type))
    from old_events;
  end if;
  return null;
end
$$;

-- Drift: the summaries merged with the tail, against the log.
create or replace function public.engagement_summary_drift()
returns table (summary text, user_id uuid, event_type text, kept timestamptz, logged timestamptz)
language sql stable security definer set search_path = ''
as $$
  with logged as (
    select e.user_id, e.event_type, max(e."timestamp") as last_at
    from public.engagement_events e
    where not e.is_deleted and e.event_type <> all (public.engagement_reserved_event_types())
    group by e.user_id, e.event_type
  ),
  tail as materialized (select * from public.engagement_activity_tail()),
  merged as (
    select m.user_id, m.event_type, max(m.last_at) as last_at
    from (select a.user_id, a.event_type, a.last_at from public.engagement_last_activity a
          union all
          select t.user_id, t.event_type, t.last_at from tail t) m
    group by m.user_id, m.event_type
  ),
  per_type as (
    select 'engagement_last_activity'::text, coalesce(a.user_id, l.user_id), coalesce(a.event_type, l.event_type),
           a.last_at, l.last_at
    from merged a
    full join logged l on l.user_id = a.user_id and l.event_type = a.event_type
    where a.last_at is distinct from l.last_at
  ),
  per_user as (
    select 'engagement_users.last_activity_at'::text, u.user_id, null::text,
           greatest(u.last_activity_at, t.last_at), l.last_at
    from public.engagement_users u
    left join (select logged.user_id, max(logged.last_at) as last_at from logged group by logged.user_id) l
      on l.user_id = u.user_id
    left join (select tail.user_id, max(tail.last_at) as last_at from tail group by tail.user_id) t
      on t.user_id = u.user_id
    where greatest(u.last_activity_at, t.last_at) is distinct from l.last_at
  )
  select * from per_type
  union all
  select * from per_user
$$;

-- Rebuild: rewrite the rows whose merged value disagrees with the log (a row behind the log only
-- by its tail is not drift, and is left for the fold); returns how many rows it changed.
create or replace function public.rebuild_engagement_summaries() returns bigint
language plpgsql security definer set search_path = ''
as $$
declare
  changed bigint := 0;
  n bigint;
begin
  perform pg_advisory_xact_lock(public.engagement_summary_lock_key());
  lock table public.engagement_last_activity in share row exclusive mode;
  create temporary table if not exists pg_temp.engagement_rebuild_tail
    (user_id uuid, event_type text, last_at timestamptz) on commit drop;
  truncate pg_temp.engagement_rebuild_tail;
  insert into pg_temp.engagement_rebuild_tail select * from public.engagement_activity_tail();

  with logged as (
    select e.user_id, e.event_type, max(e."timestamp") as last_at
    from public.engagement_events e
    where not e.is_deleted and e.event_type <> all (public.engagement_reserved_event_types())
    group by e.user_id, e.event_type
  ),
  gone as (
    delete from public.engagement_last_activity a
    where not exists (select 1 from logged l where l.user_id = a.user_id and l.event_type = a.event_type)
    returning 1
  ),
  upserted as (
    insert into public.engagement_last_activity as a (user_id, event_type, last_at)
    select l.user_id, l.event_type, l.last_at from logged l
    left join pg_temp.engagement_rebuild_tail t on t.user_id = l.user_id and t.event_type = l.event_type
    -- Only where the tail alone does not already give the log's value.
    where t.last_at is distinct from l.last_at
    order by l.user_id, l.event_type
    on conflict (user_id, event_type) do update set last_at = excluded.last_at
      where a.last_at is distinct from excluded.last_at
    returning 1
  ),
  -- A row whose tail gives the log's value but whose summary is above it (edited by hand).
  lowered as (
    update public.engagement_last_activity a
    set last_at = t.last_at
    from pg_temp.engagement_rebuild_tail t
    join logged l on l.user_id = t.user_id and l.event_type = t.event_type and l.last_at = t.last_at
    where t.user_id = a.user_id and t.event_type = a.event_type and a.last_at > t.last_at
    returning 1
  )
  select (select count(*) from gone) + (select count(*) from upserted) + (select count(*) from lowered) into n;
  changed := changed + n;

  -- Set-based (one aggregate, one join): right after a bulk load the statistics may still say
  -- the per-type table is empty, and a correlated subquery per user would then scan it per user.
  with logged as (
    select e.user_id, max(e."timestamp") as last_at
    from public.engagement_events e
    where not e.is_deleted and e.event_type <> all (public.engagement_reserved_event_types())
    group by e.user_id
  ),
  tail as (
    select t.user_id, max(t.last_at) as last_at from pg_temp.engagement_rebuild_tail t group by t.user_id
  ),
  moved as (
    update public.engagement_users u
    set last_activity_at = l.last_at
    from public.engagement_users k
    left join logged l on l.user_id = k.user_id
    left join tail t on t.user_id = k.user_id
    where u.user_id = k.user_id
      and greatest(k.last_activity_at, t.last_at) is distinct from l.last_at
    returning 1
  )
  select count(*) from moved into n;
  return changed + n;
end
$$;

revoke all on function public.engagement_activity_tail(), public.engagement_summary_lock_key(),
  public.fold_engagement_summaries() from public, anon, authenticated;
grant execute on function public.engagement_activity_tail(), public.fold_engagement_summaries()
  to service_role;

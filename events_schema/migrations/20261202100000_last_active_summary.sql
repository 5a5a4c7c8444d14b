-- Issue 14: deciding from summaries instead of probing the event log once per candidate.
--
-- engagement_users.last_activity_at is each user's latest activity of any counted type (what
-- engagement_last_activity keeps per type, folded per user), kept by the same statement-level
-- triggers. With the sign-up time it gives "last active" for a rule that counts every type, and
-- the index on coalesce(last_activity_at, signed_up_at) turns "who is due at T" into one range
-- read (last active <= T - threshold) plus one for users active after T (a scan of the past,
-- a client clock running ahead), whom the scan decides from the log itself.
--
-- The event log stays the truth: public.engagement_summary_drift() lists every summary row
-- that disagrees with it, public.rebuild_engagement_summaries() rewrites both summaries from
-- it (`python -m events_schema summaries --rebuild`).

alter table public.engagement_users add column last_activity_at timestamptz;

update public.engagement_users u
set last_activity_at = a.last_at
from (select user_id, max(last_at) as last_at from public.engagement_last_activity group by user_id) a
where a.user_id = u.user_id;

create index engagement_users_last_active_idx
  on public.engagement_users ((coalesce(last_activity_at, signed_up_at)), user_id);

-- Inserts: raise each (user, type) and each user to the statement's latest counted activity.
-- Rows are locked in key order (one order for concurrent writers: no deadlock between them).
create or replace function public.note_inserted_activity() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.engagement_last_activity as a (user_id, event_type, last_at)
  select user_id, event_type, max("timestamp")
  from inserted_events
  where not is_deleted and event_type <> all (public.engagement_reserved_event_types())
  group by user_id, event_type
  order by user_id, event_type
  on conflict (user_id, event_type) do update
    set last_at = excluded.last_at
    where a.last_at < excluded.last_at;

  with latest as (
    select user_id, max("timestamp") as last_at
    from inserted_events
    where not is_deleted and event_type <> all (public.engagement_reserved_event_types())
    group by user_id
  ),
  raised as (
    select u.ctid as row_id, l.last_at
    from public.engagement_users u
    join latest l on l.user_id = u.user_id
    where u.last_activity_at is null or u.last_activity_at < l.last_at
    order by u.user_id
    for update of u
  )
  -- The locked row by its ctid (a TID scan): no second probe of the primary key.
  update public.engagement_users u
  set last_activity_at = r.last_at
  from raised r
  where u.ctid = r.row_id;
  return null;
end
$$;

-- Updates and deletes: recompute the affected (user, type) pairs from the log, then their users
-- from the pairs. The pairs' rows are locked first, so that a concurrent insert that raised one
-- is seen by the recompute (a statement taken after the lock) rather than overwritten by it.
create or replace function public.refresh_last_activity(pairs_user_id uuid[], pairs_event_type text[])
returns void
language plpgsql security definer set search_path = ''
as $$
begin
  perform 1 from public.engagement_last_activity a
  join unnest(pairs_user_id, pairs_event_type) as p (user_id, event_type)
    on a.user_id = p.user_id and a.event_type = p.event_type
  order by a.user_id, a.event_type
  for update of a;

  with pairs as (
    select distinct p.user_id, p.event_type
    from unnest(pairs_user_id, pairs_event_type) as p (user_id, event_type)
    where p.event_type <> all (public.engagement_reserved_event_types())
  ),
  fresh as (
    select p.user_id, p.event_type,
           (select e."timestamp" from public.engagement_events e
             where e.user_id = p.user_id and e.event_type = p.event_type and not e.is_deleted
             order by e."timestamp" desc limit 1) as last_at
    from pairs p
  ),
  gone as (
    delete from public.engagement_last_activity a
    using fresh f
    where a.user_id = f.user_id and a.event_type = f.event_type and f.last_at is null
  )
  insert into public.engagement_last_activity (user_id, event_type, last_at)
  select user_id, event_type, last_at from fresh where last_at is not null
  order by user_id, event_type
  on conflict (user_id, event_type) do update set last_at = excluded.last_at;

  with touched as (
    select distinct p.user_id from unnest(pairs_user_id) as p (user_id)
  ),
  fresh as (
    select t.user_id, (select max(a.last_at) from public.engagement_last_activity a
                        where a.user_id = t.user_id) as last_at
    from touched t
  ),
  moved as (
    select u.ctid as row_id, f.last_at
    from public.engagement_users u
    join fresh f on f.user_id = u.user_id
    where u.last_activity_at is distinct from f.last_at
    order by u.user_id
    for update of u
  )
  update public.engagement_users u
  set last_activity_at = m.last_at
  from moved m
  where u.ctid = m.row_id;
end
$$;

-- Every summary row that disagrees with the event log: (summary, user, event type or NULL for
-- the per-user row, what the summary keeps, what the log says). Reads the whole log.
create function public.engagement_summary_drift()
returns table (summary text, user_id uuid, event_type text, kept timestamptz, logged timestamptz)
language sql stable security definer set search_path = ''
as $$
  with logged as (
    select e.user_id, e.event_type, max(e."timestamp") as last_at
    from public.engagement_events e
    where not e.is_deleted and e.event_type <> all (public.engagement_reserved_event_types())
    group by e.user_id, e.event_type
  ),
  per_type as (
    select 'engagement_last_activity'::text, coalesce(a.user_id, l.user_id), coalesce(a.event_type, l.event_type),
           a.last_at, l.last_at
    from public.engagement_last_activity a
    full join logged l on l.user_id = a.user_id and l.event_type = a.event_type
    where a.last_at is distinct from l.last_at
  ),
  per_user as (
    select 'engagement_users.last_activity_at'::text, u.user_id, null::text, u.last_activity_at, l.last_at
    from public.engagement_users u
    left join (select logged.user_id, max(logged.last_at) as last_at from logged group by logged.user_id) l
      on l.user_id = u.user_id
    where u.last_activity_at is distinct from l.last_at
  )
  select * from per_type
  union all
  select * from per_user
$$;

-- Rewrite both summaries from the event log; returns how many rows it changed (0: no drift).
create function public.rebuild_engagement_summaries() returns bigint
language plpgsql security definer set search_path = ''
as $$
declare
  changed bigint := 0;
  n bigint;
begin
  lock table public.engagement_last_activity in share row exclusive mode;
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
    select user_id, event_type, last_at from logged
    order by user_id, event_type
    on conflict (user_id, event_type) do update set last_at = excluded.last_at
      where a.last_at is distinct from excluded.last_at
    returning 1
  )
  select (select count(*) from gone) + (select count(*) from upserted) into n;
  changed := changed + n;

  -- Set-based (one aggregate, one join): right after a bulk load the statistics may still say
  -- the per-type table is empty, and a correlated subquery per user would then scan it per user.
  with folded as (
    select u.user_id, a.last_at
    from public.engagement_users u
    left join (select user_id, max(last_at) as last_at from public.engagement_last_activity
               group by user_id) a on a.user_id = u.user_id
  ),
  moved as (
    update public.engagement_users u
    set last_activity_at = f.last_at
    from folded f
    where u.user_id = f.user_id and u.last_activity_at is distinct from f.last_at
    returning 1
  )
  select count(*) from moved into n;
  return changed + n;
end
$$;

revoke all on function public.engagement_summary_drift(), public.rebuild_engagement_summaries()
  from public, anon, authenticated;
grant execute on function public.engagement_summary_drift(), public.rebuild_engagement_summaries()
  to service_role;

-- Weekly retention by sign-up cohort ("recurring" retention, as PostHog, Mixpanel and
-- Amplitude call it): users are grouped by the ISO week (Monday 00:00 UTC) of their sign-up
-- (engagement_users.signed_up_at, the engine's sign-up time); for each cohort and each week
-- offset k = 0, 1, 2, ..., the share of the cohort with activity in week k after its sign-up
-- week, independently of the other weeks (a user may be absent in week 1 and back in week 2).
-- Week 0 counts activity from the sign-up itself to the end of that week.
--
-- Activity is the engine's definition: not soft-deleted, type not reserved for the engine
-- (public.engagement_reserved_event_types()); nudges never count, a user's reaction to one does.
--
-- Parameters (timestamptz): range_start (rounded down to its Monday), range_end (exclusive).
-- Cohorts are the users who signed up in the range. Every cohort gets the same offsets (as many
-- as the range has weeks); a cell whose week starts at or after range_end lies in the future or
-- past the range and is NULL, never 0. A week cut by range_end counts only its part before it.
-- A user who signed up and never came back is in cohort_size and in no active_users.
--
-- Weeks are stepped in UTC whatever the session's TimeZone: on `timestamp` (UTC wall-clock time),
-- back to instants with `at time zone 'UTC'`; `timestamptz + interval '1 week'` would add 7 days
-- in the session's zone, 167 or 169 hours across a DST change.
--
-- Plan: cohorts come from engagement_users_signed_up_at_idx; each (user, week) cell is one probe
-- into engagement_events_user_id_timestamp_idx that stops at the first qualifying row.
with bounds as (
  select date_trunc('week', %(range_start)s::timestamptz at time zone 'UTC') at time zone 'UTC' as range_start,
         %(range_end)s::timestamptz as range_end
),
offsets as (
  select k.week_offset
  from bounds b,
       generate_series(0, ceil(extract(epoch from b.range_end - b.range_start) / (7 * 86400))::int - 1)
         as k (week_offset)
),
members as (
  select u.user_id, u.signed_up_at,
         date_trunc('week', u.signed_up_at at time zone 'UTC') at time zone 'UTC' as cohort_week
  from public.engagement_users u, bounds b
  where u.signed_up_at >= b.range_start and u.signed_up_at < b.range_end
),
cohorts as (
  select cohort_week, count(*) as cohort_size from members group by cohort_week
),
cells as (
  select c.cohort_week, c.cohort_size, o.week_offset,
         (c.cohort_week at time zone 'UTC' + o.week_offset * interval '1 week') at time zone 'UTC' as week_start
  from cohorts c cross join offsets o
),
active as (
  -- Only the cells inside the range are probed; the others stay NULL below. The probe is a
  -- LATERAL ... LIMIT 1 so that it stays one index probe per (user, week) at any table size,
  -- instead of a hash of every event in the range.
  select cl.cohort_week, cl.week_offset, count(*) as active_users
  from cells cl
  join members m on m.cohort_week = cl.cohort_week
  cross join bounds b
  cross join lateral (
    select 1
      from public.engagement_events e
     where e.user_id = m.user_id
       and e."timestamp" >= greatest(cl.week_start, m.signed_up_at)
       and e."timestamp" < least((cl.week_start at time zone 'UTC' + interval '1 week') at time zone 'UTC', b.range_end)
       and not e.is_deleted
       and e.event_type <> all (public.engagement_reserved_event_types())
     limit 1
  ) seen
  where cl.week_start < b.range_end
  group by cl.cohort_week, cl.week_offset
)
select cl.cohort_week,
       cl.cohort_size,
       cl.week_offset,
       cl.week_start,
       case when cl.week_start < b.range_end then coalesce(a.active_users, 0) end as active_users,
       case when cl.week_start < b.range_end
            then coalesce(a.active_users, 0)::numeric / cl.cohort_size end as retention
from cells cl
cross join bounds b
left join active a on a.cohort_week = cl.cohort_week and a.week_offset = cl.week_offset
order by cl.cohort_week, cl.week_offset

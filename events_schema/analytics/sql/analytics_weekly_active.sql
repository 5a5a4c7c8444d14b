-- Weekly active users: for each ISO week (Monday 00:00 UTC) of [range_start, range_end), the
-- number of distinct users with activity in it.
--
-- Activity is the engine's definition (docs/engine.md, "Definitions"): an event that is not
-- soft-deleted and whose type is not reserved for the engine (public.engagement_reserved_event_types():
-- nudge_sent, nudge_delivered, nudge_failed). Only activity at or after the user's sign-up
-- (engagement_users.signed_up_at) counts, as in the retention query, so the two agree.
--
-- Parameters (timestamptz): range_start (rounded down to its Monday), range_end (exclusive;
-- the last week is cut there, so a range ending mid-week shows a partial last week).
--
-- Plan: one probe per (user, week) into engagement_events_user_id_timestamp_idx that stops at
-- the first qualifying row (LATERAL ... LIMIT 1, so the planner cannot turn it into a hash of
-- every event), so the cost follows users x weeks rather than the number of events.
--
-- Weeks are stepped in UTC whatever the session's TimeZone: over `timestamp` (UTC wall-clock time,
-- no DST), turned into instants with `at time zone 'UTC'`. `timestamptz + interval '1 week'`
-- would add 7 days in the session's zone, 167 or 169 hours across a DST change.
with weeks as (
  select w.week_utc at time zone 'UTC' as week_start,
         least((w.week_utc + interval '1 week') at time zone 'UTC', %(range_end)s::timestamptz) as week_end
  from generate_series(
         date_trunc('week', %(range_start)s::timestamptz at time zone 'UTC'),
         (%(range_end)s::timestamptz - interval '1 microsecond') at time zone 'UTC',
         interval '1 week') as w (week_utc)
)
select w.week_start,
       w.week_end,
       (select count(*)
          from public.engagement_users u
         cross join lateral (
           select 1
             from public.engagement_events e
            where e.user_id = u.user_id
              and e."timestamp" >= greatest(w.week_start, u.signed_up_at)
              and e."timestamp" < w.week_end
              and not e.is_deleted
              and e.event_type <> all (public.engagement_reserved_event_types())
            limit 1
         ) seen
         where u.signed_up_at < w.week_end
       ) as active_users
from weeks w
order by w.week_start

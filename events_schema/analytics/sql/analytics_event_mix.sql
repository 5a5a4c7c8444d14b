-- The event-type mix per ISO week (Monday 00:00 UTC) of [range_start, range_end): how many
-- events of each type, from how many users, and each type's share of the week's events.
-- Soft-deleted rows are left out. The engine's own reserved types (nudges) are listed too, so
-- the nudge volume is visible, but flagged: `counts_as_activity` is false for them.
--
-- Parameters (timestamptz): range_start (rounded down to its Monday), range_end (exclusive).
--
-- Plan: this counts every event of the range, so it reads them all; with no index leading on
-- "timestamp" that is one sequential scan of engagement_events (cheaper than an index walk that
-- would touch the same rows in random order).
with bounds as (
  select date_trunc('week', %(range_start)s::timestamptz at time zone 'UTC') at time zone 'UTC' as range_start,
         %(range_end)s::timestamptz as range_end
),
counted as (
  select date_trunc('week', e."timestamp" at time zone 'UTC') at time zone 'UTC' as week_start,
         e.event_type,
         count(*) as events,
         count(distinct e.user_id) as users
  from public.engagement_events e, bounds b
  where e."timestamp" >= b.range_start and e."timestamp" < b.range_end
    and not e.is_deleted
  group by 1, 2
)
select c.week_start,
       c.event_type,
       c.event_type <> all (public.engagement_reserved_event_types()) as counts_as_activity,
       c.events,
       c.users,
       c.events::numeric / sum(c.events) over (partition by c.week_start) as share
from counted c
order by c.week_start, c.events desc, c.event_type

-- The local time of day at every beat of the window, in microseconds since midnight, per time
-- zone the users have (UTC for none): quiet hours and the local hour of sends are read from it,
-- so the replay converts time as the scan does, with PostgreSQL's own zone data, across DST.
select z.timezone,
       array_agg((extract(epoch from (b.at at time zone z.timezone)::time) * 1000000)::bigint order by b.k) as local_us
from (select distinct coalesce(u.timezone, 'UTC') as timezone from public.engagement_users u) z
cross join (
  select k, %(window_start)s::timestamptz + k * %(step)s::interval as at
  from generate_series(0, %(beats)s::int - 1) k
) b
group by z.timezone

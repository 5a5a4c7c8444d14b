-- Remember users who are due but held back, and when the hold ends, so the first incremental
-- scan after that looks at them again.
insert into public.nudge_pending as p (rule, user_id, last_active_at, reason, since, hold_until)
select %(rule)s::text, h.user_id, h.last_active_at, h.reason, %(as_of)s::timestamptz, h.hold_until
from unnest(%(user_ids)s::uuid[], %(last_active_ats)s::timestamptz[], %(reasons)s::text[],
            %(hold_untils)s::timestamptz[])
  as h (user_id, last_active_at, reason, hold_until)
order by h.user_id
on conflict (rule, user_id) do update
  set last_active_at = excluded.last_active_at,
      reason = excluded.reason,
      hold_until = excluded.hold_until,
      since = case when p.last_active_at = excluded.last_active_at then p.since else excluded.since end
  where (p.last_active_at, p.reason, p.hold_until)
    is distinct from (excluded.last_active_at, excluded.reason, excluded.hold_until)
    -- A user deferred again by the rate limit keeps the row it has: no write per scan.
    and not (p.reason = 'rate_limited' and excluded.reason = 'rate_limited'
             and p.last_active_at = excluded.last_active_at)

-- Remember users who are due but held back, so the next incremental scan looks at them again.
insert into public.nudge_pending as p (rule, user_id, last_active_at, reason, since)
select %(rule)s::text, h.user_id, h.last_active_at, h.reason, %(as_of)s::timestamptz
from unnest(%(user_ids)s::uuid[], %(last_active_ats)s::timestamptz[], %(reasons)s::text[])
  as h (user_id, last_active_at, reason)
order by h.user_id
on conflict (rule, user_id) do update
  set last_active_at = excluded.last_active_at,
      reason = excluded.reason,
      since = case when p.last_active_at = excluded.last_active_at then p.since else excluded.since end
  where (p.last_active_at, p.reason) is distinct from (excluded.last_active_at, excluded.reason)

-- The holds and releases of scan_batch.sql (after its `budgeted` CTE and the decision events):
-- data-modifying CTEs, which all run to completion against the statement's snapshot whether the
-- output reads them or not; they touch disjoint rows (a user of the batch is written, held or
-- released, once).
held as (
  -- Users due but held back, and when the hold ends, so the first incremental scan after that
  -- looks at them again.
  insert into public.nudge_pending as p (rule, user_id, last_active_at, reason, since, hold_until)
  select %(rule)s::text, b.user_id, b.last_active_at, b.decision, %(as_of)s::timestamptz, b.hold_until
  from budgeted b
  where b.candidate and b.decision in ('cooldown', 'quiet_hours', 'rate_limited')
  order by b.user_id
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
),
released as (
  -- Users decided for good this time (nudged, returned, opted out) are no longer pending: one
  -- probe of the primary key per user (an array, not a join the planner might make a scan of
  -- every hold).
  delete from public.nudge_pending p
  where p.rule = %(rule)s
    and p.user_id = any (array(
      select b.user_id from budgeted b
      where b.candidate and b.decision not in ('cooldown', 'quiet_hours', 'rate_limited')))
)

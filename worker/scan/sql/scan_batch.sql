-- One batch of a scan, decided and written in one statement, with no row through Python:
-- the decisions of scan_decide.sql (around one of the candidate queries), the scan's nudge
-- budget applied to them in batch order, the decision events written (`nudge_sent`, or
-- `nudge_withheld` for a holdout's control arm), the held users remembered and the settled ones
-- released. What comes back (the output, at the end) is one row of counts (scan_batch_counts.sql) or, for a
-- caller that lists decisions (the dry run of the ops CLI, the tests' hooks), every decision
-- (scan_batch_listing.sql). {{writes}} are the decision events (scan_batch_sent.sql, or a shadow
-- rule's scan_batch_sent_shadow.sql) and scan_batch_holds.sql, or for a dry run, which decides
-- and counts the same, scan_batch_sent_dry.sql: no write at all (an INSERT that inserts no row
-- would still fire the event table's statement triggers).
with decided as materialized (
{decide}
),
counted as (
  -- The n-th write of this batch in batch order (the candidates' order: last active for a full
  -- scan of an all-types rule, user id otherwise): past what is left of the budget
  -- (NUDGE_MAX_PER_SCAN; null: no limit) it is deferred to the next scan instead. A withheld
  -- nudge costs the budget as a nudge does, so the cap treats both arms alike.
  select d.user_id, d.candidate, d.key_at, d.last_active_at, d.timezone, d.local_time,
         d.episode_key, d.decision, d.hold_until,
         d.candidate and d.decision in ('nudge', 'withhold', 'shadow') as writes,
         count(*) filter (where d.candidate and d.decision in ('nudge', 'withhold', 'shadow'))
           over (order by d.key_at, d.user_id rows unbounded preceding) as nth
  from decided d
),
budgeted as materialized (
  select c.user_id, c.candidate, c.key_at, c.last_active_at, c.timezone, c.local_time, c.episode_key,
         case when o.deferred then 'rate_limited' else c.decision end as decision,
         case when o.deferred then %(as_of)s::timestamptz else c.hold_until end as hold_until
  from counted c
  cross join lateral (select c.writes and c.nth > %(budget)s::int as deferred) o
),
{writes}
{output}

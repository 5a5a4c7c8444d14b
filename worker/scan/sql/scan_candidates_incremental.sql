-- The next batch, after user id %(after)s, of who may have become due since the previous scan
-- of this rule: activity (of the rule's types) or sign-up that crossed the threshold in
-- (window_start, cutoff], plus the held-back users whose hold (quiet hours, cool-down, rate
-- limit) has ended. Cost grows with those users, not with the number of events or of users; each batch
-- reads the window again (the user-id bound is pushed into each branch), which is cheap while
-- the window is a scan interval's worth of users.
select c.user_id, true as candidate, null::timestamptz as key_at,
       u.signed_up_at, u.timezone, u.nudges_opt_out, u.last_activity_at
from (
  select c.user_id
  from (
    select a.user_id
    from public.engagement_last_activity a
    where a.last_at > %(window_start)s and a.last_at <= %(cutoff)s
      and (%(event_types)s::text[] is null or a.event_type = any (%(event_types)s::text[]))
    union
    -- The same for activity in the log's unfolded tail (migration 20261205100000).
    select t.user_id
    from public.engagement_activity_tail() t
    where t.last_at > %(window_start)s and t.last_at <= %(cutoff)s
      and (%(event_types)s::text[] is null or t.event_type = any (%(event_types)s::text[]))
    union
    select u.user_id
    from public.engagement_users u
    where u.signed_up_at > %(window_start)s and u.signed_up_at <= %(cutoff)s
    union
    select p.user_id
    from public.nudge_pending p
    where p.rule = %(rule)s and p.hold_until <= %(as_of)s
      -- Once this scan's nudge budget is spent (NUDGE_MAX_PER_SCAN), users it already holds back
      -- for the rate limit stay held for the next scan without being decided again.
      and (%(budget_open)s or p.reason <> 'rate_limited')
  ) c
  where (%(after)s::uuid is null or c.user_id > %(after)s::uuid)
    -- This scan's shard of the users (worker/scan/shards.py); all of them unsharded.
    and (%(shards)s::int = 1
         or public.engagement_shard(c.user_id, %(shards)s::int) = %(shard)s::int)
  order by c.user_id
  limit %(limit)s
) c
-- The user's columns by one index probe per candidate: a plain join was planned as a hash of
-- every user (a sequential scan of engagement_users per batch: 0.4 s at 1M users).
cross join lateral (
  select p.signed_up_at, p.timezone, p.nudges_opt_out, p.last_activity_at
  from public.engagement_users p
  where p.user_id = c.user_id
  limit 1
) u
order by c.user_id

-- A full scan of a rule that narrows the counted types (a rule counting every type reads
-- scan_candidates_full.sql instead): the next %(limit)s users of this scan's shard after user id
-- %(after)s (keyset on the users' primary key), each with whether they may be due at as_of: no
-- counted activity in (cutoff, as_of] according to the per-type summary, and either some activity
-- or a sign-up at or before the cutoff. Only those rows come back, plus the last user walked
-- (candidate = false unless it is one), where the next batch starts. One range read of
-- engagement_users and one of engagement_last_activity per batch, merged in user-id order: no
-- probe per user, and nothing outlives the transaction, which a transaction-mode pooler needs.
--
-- The walk reads %(limit)s x %(shards)s users in id order, then keeps the shard's first %(limit)s:
-- with the shard filter inside the ordered read, the planner (which cannot estimate the filter:
-- 0.5%% of the rows, not 1/shards) expected to need every user for one batch and chose a
-- sequential scan and sort of all users per batch (tests/integration/scan/test_scan_plans.py).
with span as materialized (
  select u.user_id, u.signed_up_at, u.timezone, u.nudges_opt_out, u.last_activity_at,
         -- This scan's shard of the users (worker/scan/shards.py); all of them unsharded.
         (%(shards)s::int = 1
          or public.engagement_shard(u.user_id, %(shards)s::int) = %(shard)s::int) as mine
  from public.engagement_users u
  where u.user_id > coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000'::uuid)
  order by u.user_id
  limit %(limit)s::int * %(shards)s::int
),
walked as materialized (
  -- The span up to the shard's %(limit)s-th user, or all of it when it holds fewer.
  select s.user_id, s.signed_up_at, s.timezone, s.nudges_opt_out, s.last_activity_at, s.mine
  from span s
  where s.user_id <= coalesce(
    (select m.user_id from span m where m.mine order by m.user_id offset %(limit)s::int - 1 limit 1),
    (select m.user_id from span m order by m.user_id desc limit 1))
),
activity as (
  select a.user_id, bool_or(a.last_at > %(cutoff)s and a.last_at <= %(as_of)s) as recent
  from public.engagement_last_activity a
  where a.user_id > coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000'::uuid)
    and a.user_id <= (select w.user_id from walked w order by w.user_id desc limit 1)
    and (%(event_types)s::text[] is null or a.event_type = any (%(event_types)s::text[]))
  group by a.user_id
),
-- Users with activity in the log's unfolded tail (migration 20261205100000), which the per-type
-- summary does not have yet: they may be due by it.
tail as materialized (
  select t.user_id from public.engagement_activity_tail() t
  where %(event_types)s::text[] is null or t.event_type = any (%(event_types)s::text[])
),
judged as (
  select w.user_id, w.signed_up_at, w.timezone, w.nudges_opt_out, w.last_activity_at,
         w.mine and not coalesce(a.recent, false)
           and (w.signed_up_at <= %(cutoff)s or a.user_id is not null or w.user_id in (select t.user_id from tail t))
           as candidate,
         row_number() over (order by w.user_id desc) = 1 as last_walked
  from walked w
  left join activity a on a.user_id = w.user_id
)
select user_id, candidate, null::timestamptz as key_at, signed_up_at, timezone, nudges_opt_out, last_activity_at
from judged
where candidate or last_walked
order by user_id

-- A full scan of a rule that counts every type: the next %(limit)s users, in (last active,
-- user id) order after (%(after_at)s, %(after)s), who are due at as_of by the per-user summary
-- (last active = coalesce(last_activity_at, signed_up_at) <= cutoff), then those whose latest
-- activity is after as_of (a scan of the past, a client clock running ahead), whom the decide
-- query judges from the log itself. Each row carries the user's columns the decide query needs. Two range reads of engagement_users_last_active_idx: the
-- cost grows with the users due, not with all users or events.
select c.user_id, true as candidate, c.last_active as key_at,
       c.signed_up_at, c.timezone, c.nudges_opt_out, c.last_activity_at
from (
  (select u.user_id, coalesce(u.last_activity_at, u.signed_up_at) as last_active,
          u.signed_up_at, u.timezone, u.nudges_opt_out, u.last_activity_at
   from public.engagement_users u
   where coalesce(u.last_activity_at, u.signed_up_at) <= %(cutoff)s
     and (coalesce(u.last_activity_at, u.signed_up_at), u.user_id)
         > (coalesce(%(after_at)s::timestamptz, '-infinity'),
            coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000'::uuid))
     -- This scan's shard of the users (worker/scan/shards.py); all of them unsharded.
     and (%(shards)s::int = 1
          or public.engagement_shard(u.user_id, %(shards)s::int) = %(shard)s::int)
   order by coalesce(u.last_activity_at, u.signed_up_at), u.user_id
   limit %(limit)s)
  union all
  (select u.user_id, coalesce(u.last_activity_at, u.signed_up_at) as last_active,
          u.signed_up_at, u.timezone, u.nudges_opt_out, u.last_activity_at
   from public.engagement_users u
   -- Last active after as_of, and after the keyset position, in one bound: (as_of, the
   -- greatest uuid) while the first branch runs, the position once this one does. With two
   -- bounds on the same column (one of them a row comparison) the index read started at the
   -- lower one and walked every user due at as_of to reach none (900 buffers per batch at
   -- 100k users).
   where (coalesce(u.last_activity_at, u.signed_up_at), u.user_id)
         > (case when %(after_at)s::timestamptz > %(as_of)s::timestamptz
                 then %(after_at)s::timestamptz else %(as_of)s::timestamptz end,
            case when %(after_at)s::timestamptz > %(as_of)s::timestamptz
                 then %(after)s::uuid else 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid end)
     and u.last_activity_at > %(as_of)s  -- a sign-up after as_of alone: not due
     -- The same shard filter: a user active after as_of belongs to one shard too.
     and (%(shards)s::int = 1
          or public.engagement_shard(u.user_id, %(shards)s::int) = %(shard)s::int)
   order by coalesce(u.last_activity_at, u.signed_up_at), u.user_id
   limit %(limit)s)
  union all
  -- Users with no folded activity, signed up after the cutoff, with activity in the log's
  -- unfolded tail (migration 20261205100000): their key, the sign-up, cannot tell whether that
  -- activity (if older than the sign-up) makes them due; the decide query reads it. A few users
  -- at most, by the primary key.
  (select u.user_id, coalesce(u.last_activity_at, u.signed_up_at) as last_active,
          u.signed_up_at, u.timezone, u.nudges_opt_out, u.last_activity_at
   from public.engagement_users u
   where u.user_id in (select t.user_id from public.engagement_activity_tail() t)
     and u.last_activity_at is null
     and u.signed_up_at > %(cutoff)s
     and (coalesce(u.last_activity_at, u.signed_up_at), u.user_id)
         > (coalesce(%(after_at)s::timestamptz, '-infinity'),
            coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000'::uuid))
     and (%(shards)s::int = 1
          or public.engagement_shard(u.user_id, %(shards)s::int) = %(shard)s::int)
   order by coalesce(u.last_activity_at, u.signed_up_at), u.user_id
   limit %(limit)s)
) c
order by c.last_active, c.user_id
limit %(limit)s

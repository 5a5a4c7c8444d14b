-- The next batch of everyone who may be due at as_of, after user id %(after)s: no counted
-- activity in (cutoff, as_of] according to the per-type summary, and either some activity or a
-- sign-up at or before the cutoff. A superset: each candidate is decided against
-- engagement_events itself. Recomputed per batch (keyset on the users' primary key) instead of
-- kept in a table: nothing outlives the transaction, which a transaction-mode pooler needs, and
-- it measured faster than any kept table (bench/scan_candidates.py).
select u.user_id
from public.engagement_users u
where (%(after)s::uuid is null or u.user_id > %(after)s::uuid)
  and not exists (
    select 1 from public.engagement_last_activity a
    where a.user_id = u.user_id
      and a.last_at > %(cutoff)s and a.last_at <= %(as_of)s
      and (%(event_types)s::text[] is null or a.event_type = any (%(event_types)s::text[])))
  and (u.signed_up_at <= %(cutoff)s
       or exists (
         select 1 from public.engagement_last_activity a
         where a.user_id = u.user_id
           and (%(event_types)s::text[] is null or a.event_type = any (%(event_types)s::text[]))))
  -- This scan's shard of the users (worker/scan/shards.py); all of them unsharded.
  and (%(shards)s::int = 1
       or (get_byte(uuid_send(u.user_id), 14) * 256 + get_byte(uuid_send(u.user_id), 15)) %% %(shards)s::int
          = %(shard)s::int)
order by u.user_id
limit %(limit)s

-- One batch of a scan in one statement: the candidates (one of the
-- scan_candidates_*.sql queries, each row with the user's columns and the keyset position) and
-- the decision for each at as_of.
-- Last active = latest counted, non-deleted event at or before as_of, else the sign-up time.
-- It comes from the summaries (engagement_users.last_activity_at for a rule counting every type,
-- engagement_last_activity for one that narrows them) merged with the log's unfolded tail, which hold the
-- latest activity of all time: when that is at or before as_of it is the answer; when it is
-- later (a scan of the past, a client clock running ahead) the log itself is read back from
-- as_of. Every other lookup is a per-user index probe (lateral joins with LIMIT), so a batch
-- costs the same whatever the size of the tables: no scan or hash of all users or all nudges.
-- Rows with candidate = false only mark where the next batch starts (their decision is unused).
with c as (
{candidates}
),
-- The summaries lag the log by its unfolded tail (rows written since the last fold, read by the
-- feed's index: migration 20261205100000); each user's latest counted activity there is merged in.
tail as materialized (
  select t.user_id, max(t.last_at) as last_at
  from public.engagement_activity_tail() t
  where %(event_types)s::text[] is null or t.event_type = any (%(event_types)s::text[])
  group by t.user_id
)
select c.user_id,
       c.candidate,
       c.key_at,
       f.last_active_at,
       f.timezone,
       f.local_at::time as local_time,
       ek.episode_key,
       -- A due user about to be nudged is in the rule's control arm when their bucket is below
       -- holdout_percent * 100: decided last (after opt-out, episode, cool-down, quiet hours), so
       -- the arms differ only in the send. Here, in the select list, and not in d's CASE, which
       -- PostgreSQL copies into each place that names d.decision: the hash runs once per due user.
       -- It is public.engagement_holdout_bucket(salt, rule, user_id) written out, since a call of
       -- that function is not inlined (its `set search_path`) and costs ten times the expression
       -- (bench/scan_holdout.py); the scan tests check both give the same arms.
       -- A shadow rule's would-be nudge is 'shadow' (recorded as `nudge_shadow`, never sent).
       case when d.decision = 'nudge' and %(shadow)s then 'shadow'
            when d.decision = 'nudge' and %(holdout_buckets)s > 0
             and mod(('x' || left(encode(sha256(convert_to(
                   %(holdout_salt)s || '/' || %(rule)s || '/' || c.user_id::text, 'UTF8')), 'hex'), 15)
                 )::bit(60)::bigint, 10000) < %(holdout_buckets)s
            then 'withhold'
            else d.decision end as decision,
       -- A held user is due again when the hold ends: the end of the cool-down after their
       -- last nudge, or the next end of quiet hours in their own time zone.
       case d.decision
         when 'cooldown' then last_nudge."timestamp" + %(cooldown)s::interval
         when 'quiet_hours' then
           (f.local_at::date + (f.local_at::time >= %(quiet_end)s::time)::int + %(quiet_end)s::time)
             at time zone f.timezone
       end as hold_until
from c
left join tail on tail.user_id = c.user_id
cross join lateral (
  select greatest(
           case
             when %(event_types)s::text[] is null then c.last_activity_at
             else (select max(a.last_at) from public.engagement_last_activity a
                    where a.user_id = c.user_id and a.event_type = any (%(event_types)s::text[]))
           end,
           tail.last_at) as kept_at
) k
left join lateral (
  select e."timestamp"
    from public.engagement_events e
   where k.kept_at > %(as_of)s
     and e.user_id = c.user_id
     and e."timestamp" <= %(as_of)s
     and not e.is_deleted
     and e.event_type <> all (public.engagement_reserved_event_types())
     and (%(event_types)s::text[] is null or e.event_type = any (%(event_types)s::text[]))
   order by e."timestamp" desc
   limit 1
) latest on true
cross join lateral (
  select case when k.kept_at > %(as_of)s then coalesce(latest."timestamp", c.signed_up_at)
              else coalesce(k.kept_at, c.signed_up_at) end as last_active_at,
         coalesce(c.timezone, 'UTC') as timezone,
         %(as_of)s::timestamptz at time zone coalesce(c.timezone, 'UTC') as local_at
) f
-- The episode's key, spelt as public.nudge_episode_time() spells it (UTC, microseconds), written
-- out: a call of that function is not inlined (its `set search_path`) and cost 9 us against
-- 1.4 us for the expression (100,000 calls, 100k-user bench database). The probe below and the
-- decision event the batch writes both use it; the scan tests check both spell it alike.
cross join lateral (
  select to_char(f.last_active_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as episode_key
) ek
-- Decisions are nudges and withheld nudges (a holdout's control arm) alike: both take the
-- cool-down's place and settle the episode, so the two arms see the same timing. Which events
-- are decisions is filled in by batch_query (worker/scan/scanner.py): for a live rule those two
-- types; for a shadow rule its own `nudge_shadow` records only (it simulates itself).
left join lateral (
  select n."timestamp"
    from public.engagement_events n
   where {decided} and n.user_id = c.user_id
     and n."timestamp" <= %(as_of)s
   order by n."timestamp" desc
   limit 1
) last_nudge on true
left join lateral (
  select true as found
    from public.engagement_events n
   where {decided} and n.user_id = c.user_id
     and n.value ->> 'rule' = %(rule)s
     and n.value ->> 'last_active_at' = ek.episode_key
   limit 1
) episode on true
cross join lateral (
  select case
           when f.last_active_at > %(cutoff)s then 'not_due'
           when c.nudges_opt_out then 'opted_out'
           when episode.found then 'already_nudged'
           when last_nudge."timestamp" > %(as_of)s::timestamptz - %(cooldown)s::interval then 'cooldown'
           when %(quiet_enabled)s and case
               when %(quiet_start)s::time > %(quiet_end)s::time
                 then f.local_at::time >= %(quiet_start)s::time or f.local_at::time < %(quiet_end)s::time
               else f.local_at::time >= %(quiet_start)s::time and f.local_at::time < %(quiet_end)s::time
             end
             then 'quiet_hours'
           else 'nudge'
         end as decision
) d
order by c.key_at, c.user_id

-- What would a proposed rule do on real traffic? A shadow rule (docs/engine.md, "Shadow mode")
-- records each nudge it would send as `nudge_shadow`; this sets those records against a live
-- rule's decisions, per ISO week (Monday 00:00 UTC) of [range_start, range_end) and over the
-- whole range (week_start NULL), for every pair (shadow rule, live rule) found in the range.
--
--   shadow_nudges / shadow_users: the shadow rule's records in the week, and the users they are
--     about (a user recorded twice, two lapses, is one user);
--   live_nudges / live_users: the live rule's decisions in the week: nudge_sent and, for a rule
--     with a holdout, nudge_withheld (the control arm: the rule decided to nudge them, the holdout
--     kept it back; a shadow rule has no holdout, so each of its records is such a decision too);
--   both_users: users both reached in the week (the overlap);
--   shadow_only_users: users the shadow rule would reach that the live one did not (in that week);
--   live_only_users: users the live rule reached that the shadow one would not.
-- Weeks go by the decision's timestamp (the scan's instant). A user the two rules reach on either
-- side of a week's boundary (a 36 h rule on Sunday, a 48 h rule on Monday) counts as shadow-only
-- in one week and live-only in the next: the whole-range rows (week_start NULL) count each user
-- once over the range and are the ones to read for overlap.
--
-- Pairs: every shadow rule with a record in the range, against every live rule with a decision
-- in the range (live_rule NULL when no live rule decided anyone: then everything is shadow-only).
-- Soft-deleted records are left out, as everywhere in the report. The records are the engine's,
-- written as the service role; a user running this sees only their own live nudges (RLS hides
-- nudge_shadow from them: test_privacy.py).
--
-- Parameters: range_start, range_end (timestamptz; time comes from Python, not now()).
--
-- Plan: the live decisions from the partial index engagement_events_nudge_decisions_idx, the
-- shadow records from engagement_events_one_shadow_per_episode (both hold nothing else), so the
-- cost follows the number of decisions, not of events.
with bounds as (
  select date_trunc('week', %(range_start)s::timestamptz at time zone 'UTC') at time zone 'UTC' as range_start,
         %(range_end)s::timestamptz as range_end
),
records as (
  select e.value ->> 'rule' as rule, false as shadow, e.user_id, e."timestamp" as at
  from public.engagement_events e
  cross join bounds b
  where e.event_type in ('nudge_sent', 'nudge_withheld')
    and not e.is_deleted
    and e."timestamp" >= b.range_start and e."timestamp" < b.range_end
  union all
  select e.value ->> 'rule', true, e.user_id, e."timestamp"
  from public.engagement_events e
  cross join bounds b
  where e.event_type = 'nudge_shadow'
    and not e.is_deleted
    and e."timestamp" >= b.range_start and e."timestamp" < b.range_end
),
pairs as (
  select s.rule as shadow_rule, l.rule as live_rule
  from (select distinct rule from records where shadow) s
  left join (select distinct rule from records where not shadow) l on true
),
-- Per pair, week (and the whole range) and user: how many records of each side.
per_user as (
  select date_trunc('week', r.at at time zone 'UTC') at time zone 'UTC' as week_start,
         p.shadow_rule, p.live_rule, r.user_id,
         count(*) filter (where r.shadow) as shadow_n,
         count(*) filter (where not r.shadow) as live_n
  from pairs p
  join records r on (r.shadow and r.rule = p.shadow_rule) or (not r.shadow and r.rule = p.live_rule)
  group by grouping sets ((date_trunc('week', r.at at time zone 'UTC'), p.shadow_rule, p.live_rule, r.user_id),
                          (p.shadow_rule, p.live_rule, r.user_id))
)
select week_start,
       shadow_rule,
       live_rule,
       sum(shadow_n)::bigint as shadow_nudges,
       count(*) filter (where shadow_n > 0) as shadow_users,
       sum(live_n)::bigint as live_nudges,
       count(*) filter (where live_n > 0) as live_users,
       count(*) filter (where shadow_n > 0 and live_n > 0) as both_users,
       count(*) filter (where shadow_n > 0 and live_n = 0) as shadow_only_users,
       count(*) filter (where shadow_n = 0 and live_n > 0) as live_only_users
from per_user
group by week_start, shadow_rule, live_rule
order by week_start nulls last, shadow_rule, live_rule nulls first

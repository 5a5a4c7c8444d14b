-- Who may have become due since the previous scan of this rule: activity (of the rule's types)
-- or sign-up that crossed the threshold in (window_start, cutoff], plus the users held back
-- last time (quiet hours, cool-down). Cost grows with those users, not with events or users.
insert into scan_candidates (user_id)
select a.user_id
from public.engagement_last_activity a
where a.last_at > %(window_start)s and a.last_at <= %(cutoff)s
  and (%(event_types)s::text[] is null or a.event_type = any (%(event_types)s::text[]))
union
select u.user_id
from public.engagement_users u
where u.signed_up_at > %(window_start)s and u.signed_up_at <= %(cutoff)s
union
select p.user_id
from public.nudge_pending p
where p.rule = %(rule)s

-- Everyone who may be due at as_of: no counted activity in (cutoff, as_of] according to the
-- per-type summary, and either some activity or a sign-up at or before the cutoff. A superset:
-- each candidate is decided against engagement_events itself.
insert into scan_candidates (user_id)
select u.user_id
from public.engagement_users u
where not exists (
    select 1 from public.engagement_last_activity a
    where a.user_id = u.user_id
      and a.last_at > %(cutoff)s and a.last_at <= %(as_of)s
      and (%(event_types)s::text[] is null or a.event_type = any (%(event_types)s::text[])))
  and (u.signed_up_at <= %(cutoff)s
       or exists (
         select 1 from public.engagement_last_activity a
         where a.user_id = u.user_id
           and (%(event_types)s::text[] is null or a.event_type = any (%(event_types)s::text[]))))

-- One decision event per due user, stamped with the scan's instant: `nudge_sent`, or
-- `nudge_withheld` for a user in the rule's holdout (control arm). A rule with a holdout records
-- it in both arms' events, so an analyst knows which experiment a decision belongs to. The
-- unique index on the episode (either type) makes a second writer (an overlapping scan, a
-- retried task) a no-op.
insert into public.engagement_events (user_id, "timestamp", event_type, value)
select n.user_id,
       %(as_of)s::timestamptz,
       n.event_type,
       jsonb_build_object(
         'rule', %(rule)s::text,
         'threshold_hours', %(threshold_hours)s::double precision,
         'last_active_at', public.nudge_episode_time(n.last_active_at),
         'scan_id', %(scan_id)s::text)
       || case when %(holdout_buckets)s > 0
            then jsonb_build_object('holdout_percent', %(holdout_percent)s::double precision,
                                    'holdout_salt', %(holdout_salt)s::text)
            else '{}'::jsonb end
from unnest(%(user_ids)s::uuid[], %(last_active_ats)s::timestamptz[], %(event_types_written)s::text[])
  as n (user_id, last_active_at, event_type)
order by n.user_id
on conflict (user_id, (value ->> 'rule'), (value ->> 'last_active_at'))
  where event_type in ('nudge_sent', 'nudge_withheld')
  do nothing
returning event_type

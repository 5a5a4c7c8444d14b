-- The decision events of scan_batch.sql for a live rule (after its `budgeted` CTE); a shadow
-- rule's are scan_batch_sent_shadow.sql. Like every data-modifying CTE it runs to completion
-- against the statement's snapshot whether the output reads it or not.
sent as (
  -- One decision event per due user, stamped with the scan's instant. A rule with a holdout
  -- records it in both arms' events, so an analyst knows which experiment a decision belongs
  -- to. The unique index on the episode (either type) makes a second writer (an overlapping
  -- scan, a retried task) a no-op: what it returns is what this statement wrote.
  insert into public.engagement_events (user_id, "timestamp", event_type, value)
  select b.user_id,
         %(as_of)s::timestamptz,
         case b.decision when 'nudge' then 'nudge_sent' else 'nudge_withheld' end,
         jsonb_build_object(
           'rule', %(rule)s::text,
           'threshold_hours', %(threshold_hours)s::double precision,
           'last_active_at', b.episode_key,
           'scan_id', %(scan_id)s::text)
         || case when %(holdout_buckets)s > 0
              then jsonb_build_object('holdout_percent', %(holdout_percent)s::double precision,
                                      'holdout_salt', %(holdout_salt)s::text)
              else '{}'::jsonb end
  from budgeted b
  where b.candidate and b.decision in ('nudge', 'withhold')
  order by b.user_id
  on conflict (user_id, (value ->> 'rule'), (value ->> 'last_active_at'))
    where event_type in ('nudge_sent', 'nudge_withheld')
    do nothing
  returning event_type
)

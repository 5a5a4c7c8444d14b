-- Which of these nudges already have their outcome (a batch cut short by a killed worker is
-- read again; what it recorded before it died is not sent again). Served by the unique index
-- engagement_events_one_outcome_per_nudge.
select value ->> 'nudge_id'
from public.engagement_events
where event_type in ('nudge_delivered', 'nudge_failed')
  and value ->> 'nudge_id' = any (%(nudge_ids)s::text[])

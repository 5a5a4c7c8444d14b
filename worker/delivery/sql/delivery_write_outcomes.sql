-- One outcome event per nudge, stamped with the dispatcher's instant. The unique index on the
-- nudge id makes a second writer a no-op: never two outcomes for one nudge.
insert into public.engagement_events (user_id, "timestamp", event_type, value)
select o.user_id, %(now)s::timestamptz, o.event_type, o.value
from unnest(%(user_ids)s::uuid[], %(event_types)s::text[], %(values)s::jsonb[]) as o (user_id, event_type, value)
on conflict ((value ->> 'nudge_id')) where event_type in ('nudge_delivered', 'nudge_failed')
  do nothing

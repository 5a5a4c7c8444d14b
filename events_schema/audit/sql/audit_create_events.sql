-- Throwaway events for the audit users, written by the session role (rolled back with the rest).
insert into public.engagement_events (id, user_id, "timestamp", event_type, value, is_deleted)
select id, user_id, now() - minutes_ago * interval '1 minute', event_type, value, is_deleted
from unnest(%(ids)s::uuid[], %(user_ids)s::uuid[], %(minutes_ago)s::int[], %(event_types)s::text[],
            %(values)s::jsonb[], %(deleted)s::boolean[])
  as e (id, user_id, minutes_ago, event_type, value, is_deleted)

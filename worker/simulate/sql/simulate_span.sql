-- Where the activity is, for the message of a window that has none.
select min(e."timestamp"), max(e."timestamp")
from public.engagement_events e
where not e.is_deleted and e.event_type <> all (public.engagement_reserved_event_types())

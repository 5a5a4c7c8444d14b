-- The event types only the engine writes, from the database's own definition.
select public.engagement_reserved_event_types()

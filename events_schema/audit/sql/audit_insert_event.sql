-- One event as a client would send it; RETURNING, as PostgREST's return=representation does.
insert into public.engagement_events (user_id, "timestamp", event_type, value, is_deleted)
values (%(user_id)s, now() + %(ahead)s::interval, %(event_type)s, '{"rls_audit": true}'::jsonb, %(is_deleted)s)
returning id

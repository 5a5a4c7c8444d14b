-- A change that keeps the row visible to its owner, so only the UPDATE rules decide.
update public.engagement_events set value = value || '{"rls_audit": true}'::jsonb
where id = any(%(ids)s::uuid[])
returning id

select id from public.engagement_events where id = any(%(ids)s::uuid[])

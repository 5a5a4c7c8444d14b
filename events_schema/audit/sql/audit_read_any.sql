select id from public.engagement_events limit %(limit)s

-- How many pages the event table has now: retention walks them in ranges.
select (pg_relation_size('public.engagement_events') / current_setting('block_size')::bigint)::bigint

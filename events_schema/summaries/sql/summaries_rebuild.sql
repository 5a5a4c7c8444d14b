-- Rewrite the summaries from the event log; how many rows changed.
select public.rebuild_engagement_summaries()

-- Raise the summaries from the log's unfolded tail; (user, type) rows read, NULL when another
-- fold held the lock (migration 20261205100000).
select public.fold_engagement_summaries()

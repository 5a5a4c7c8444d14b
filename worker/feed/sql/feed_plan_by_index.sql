-- Before a feed fetch, in its transaction: the feed reads only by index (engagement_events_feed_idx,
-- which RLS filters by user). Without this, an events table whose statistics are stale or missing
-- (just created, filled in a burst, autovacuum off) can be planned as a sequential scan, which
-- makes every fetch cost as much as the whole table.
set local enable_seqscan = off

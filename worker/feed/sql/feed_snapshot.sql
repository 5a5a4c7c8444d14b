-- The snapshot a feed fetch reads up to: the transactions it sees as committed are the ones the
-- consumer will have received once the fetch is complete (worker/feed/subscription.py).
select pg_current_snapshot()::text

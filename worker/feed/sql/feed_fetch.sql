-- One page of the live feed: the events last written by the transactions visible in the target
-- snapshot but not in the cursor's base snapshot, after the cursor's position (after_xid,
-- after_seq), in (feed_xid, feed_seq) order. The target is the cursor's, part-way through an interval,
-- or else this statement's own snapshot: whatever it sees as committed is visible to the
-- statement. Run in a PostgREST-style transaction: a user's consumer gets only what the table's
-- RLS lets that user read, never a soft-deleted row.
--
-- "Not visible in base" is spelled as index ranges on engagement_events_feed_idx (PgQ's form), so
-- a page costs what it returns, however long an old transaction holds the base's xmin back, and
-- however large a transaction:
--   1. the rest of the transaction the cursor stopped in (feed_xid = after_xid, feed_seq > after_seq);
--   2. the later transactions that were still running at base time (its xip list, in base_xip);
--   3. the transactions that started after base: range_from <= feed_xid < target's xmax.
-- The caller keeps the ranges apart (2 and 3 hold xids above after_xid only): no row-value
-- comparisons, which a btree scan cannot start from next to a plain bound on the same column.
-- Filters apply before each limit, so a page shorter than page_size means the interval is done.
-- Always one row at least: the target, with null event columns when there is nothing new.
-- The target's bounds are scalar subqueries (computed once, before the scan) rather than
-- references to a joined row: under RLS only such values may bound an index scan.
with t as materialized (
  select coalesce(%(target)s::pg_snapshot, pg_current_snapshot()) as target
),
page as (
  select e.feed_xid::text::bigint as xid, e.feed_seq as seq,
         e.id, e.user_id, e."timestamp", e.event_type, e.value, e.is_deleted
  from (
    (select e.*
     from public.engagement_events e
     where e.feed_xid = %(after_xid)s::xid8 and e.feed_seq > %(after_seq)s
       and (%(event_types)s::text[] is null or e.event_type = any (%(event_types)s::text[]))
     order by e.feed_xid, e.feed_seq
     limit %(page_size)s)
    union all
    (select e.*
     from public.engagement_events e
     where e.feed_xid = any (%(base_xip)s::xid8[])
       and pg_visible_in_snapshot(e.feed_xid, (select target from t))
       and (%(event_types)s::text[] is null or e.event_type = any (%(event_types)s::text[]))
     order by e.feed_xid, e.feed_seq
     limit %(page_size)s)
    union all
    (select e.*
     from public.engagement_events e
     where e.feed_xid >= %(range_from)s::xid8 and e.feed_xid < (select pg_snapshot_xmax(target) from t)
       and pg_visible_in_snapshot(e.feed_xid, (select target from t))
       and (%(event_types)s::text[] is null or e.event_type = any (%(event_types)s::text[]))
     order by e.feed_xid, e.feed_seq
     limit %(page_size)s)
  ) e
  order by e.feed_xid, e.feed_seq
  limit %(page_size)s
)
select t.target::text as target, page.*
from t left join page on true
order by page.xid, page.seq

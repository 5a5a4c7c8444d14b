-- One bounded chunk of retention: soft-delete the events older than the cutoff that lie on a
-- range of the table's pages (a TID range scan, PostgreSQL 14+). "Old and not yet deleted" has
-- no index, so walking the pages reads each one once per run, where a `limit` loop would re-read
-- every row it had already deleted on each chunk. Re-running skips what is already deleted.
update public.engagement_events
set is_deleted = true
where ctid >= %(first_page)s::tid and ctid < %(end_page)s::tid
  and "timestamp" < %(cutoff)s
  and not is_deleted

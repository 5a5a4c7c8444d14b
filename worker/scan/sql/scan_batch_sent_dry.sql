-- The decision events of scan_batch.sql for a dry run: none (and no holds or releases either);
-- what the output reads of them is empty.
sent as (
  select null::text as event_type where false
)

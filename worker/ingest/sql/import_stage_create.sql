-- The chunk's validated rows are staged here by COPY (the fastest way in), then inserted by one
-- statement that can skip existing ids. Created and dropped inside the chunk's transaction
-- (import_stage_drop; `on commit drop` should anything skip that), so it never outlives the
-- transaction: behind a transaction-mode pooler the next transaction may run on another server
-- session, and a table left on a pooled one would meet a later client. It also starts empty
-- for each group of a replay, which writes several batches in one transaction.
create temporary table import_stage (
  "position" bigint not null,
  id uuid not null,
  user_id uuid not null,
  "timestamp" timestamptz not null,
  event_type text not null,
  value jsonb not null
) on commit drop

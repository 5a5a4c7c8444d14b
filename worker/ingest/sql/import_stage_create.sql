-- The chunk's validated rows are staged here by COPY (the fastest way in), then inserted by one
-- statement that can skip existing ids. A temporary table, emptied at every commit, created
-- once per connection (pooled connections keep it).
create temporary table if not exists import_stage (
  "position" bigint not null,
  id uuid not null,
  user_id uuid not null,
  "timestamp" timestamptz not null,
  event_type text not null,
  value jsonb not null
) on commit delete rows

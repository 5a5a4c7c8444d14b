-- The staged rows are written: drop the table now, not at commit, so the next group of a replay
-- (same transaction) stages its own rows only.
drop table pg_temp.import_stage

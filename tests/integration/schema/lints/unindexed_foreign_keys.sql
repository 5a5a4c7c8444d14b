-- Foreign keys of public tables with no valid, whole-table index whose leading columns are the
-- key's, in the key's order (splinter's unindexed_foreign_keys compares the same prefix; a
-- partial index is refused here too: a cascading delete must find every row).
select c.conrelid::regclass::text || '.' || c.conname as offender
from pg_catalog.pg_constraint c
where c.contype = 'f'
  and c.connamespace = 'public'::regnamespace
  and not exists (
    select 1 from pg_catalog.pg_index i
    where i.indrelid = c.conrelid and i.indisvalid and i.indpred is null
      and (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)] = c.conkey)
order by 1

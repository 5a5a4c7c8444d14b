-- Indexes of public tables identical to another of the same table (splinter's duplicate_index):
-- the second costs every write and serves nothing.
select string_agg(i.indexrelid::regclass::text, ' = ' order by i.indexrelid::regclass::text) as offender
from pg_catalog.pg_index i
join pg_catalog.pg_class t on t.oid = i.indrelid
where t.relnamespace = 'public'::regnamespace
group by i.indrelid, i.indkey::text, i.indclass::text, i.indcollation::text, i.indoption::text,
         pg_catalog.pg_get_expr(i.indexprs, i.indrelid), pg_catalog.pg_get_expr(i.indpred, i.indrelid)
having count(*) > 1
order by 1

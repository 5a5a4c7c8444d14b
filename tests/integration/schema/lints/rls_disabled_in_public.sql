-- Tables in public without row level security (splinter's rls_disabled_in_public, an ERROR):
-- PostgREST exposes public, and grants are not the only thing between a table and the API.
select c.oid::regclass::text as offender
from pg_catalog.pg_class c
where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity
order by 1

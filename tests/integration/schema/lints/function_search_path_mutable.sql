-- Functions in public whose search_path is the caller's, or follows the caller ("$user"):
-- splinter's function_search_path_mutable flags a function without `search_path=` in proconfig.
-- Functions an extension owns are the extension's business.
select p.oid::regprocedure::text as offender
from pg_catalog.pg_proc p
where p.pronamespace = 'public'::regnamespace
  and not exists (select 1 from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
  and not exists (select 1 from unnest(p.proconfig) as setting
                  where setting like 'search_path=%' and setting not like '%$user%')
order by 1

-- Functions in public whose search_path is the caller's, or follows the caller ("$user"):
-- splinter's function_search_path_mutable flags a function without `search_path=` in proconfig.
-- Functions an extension owns are the extension's business. A SQL-standard body (RETURN, BEGIN
-- ATOMIC) binds its names when it is created, so the caller's search_path never reaches it:
-- exempt here (splinter, which looks only for the setting, lists it as a WARN; docs/supabase.md).
select p.oid::regprocedure::text as offender
from pg_catalog.pg_proc p
where p.pronamespace = 'public'::regnamespace
  and not exists (select 1 from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
  and p.prosqlbody is null
  and not exists (select 1 from unnest(p.proconfig) as setting
                  where setting like 'search_path=%' and setting not like '%$user%')
order by 1

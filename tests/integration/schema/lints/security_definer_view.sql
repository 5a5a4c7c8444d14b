-- Views in public that read their tables with the owner's rights, bypassing the reader's RLS
-- (splinter's security_definer_view): every view needs security_invoker.
select c.oid::regclass::text as offender
from pg_catalog.pg_class c
where c.relnamespace = 'public'::regnamespace and c.relkind = 'v'
  and not coalesce('security_invoker=true' = any(c.reloptions) or 'security_invoker=on' = any(c.reloptions), false)
order by 1

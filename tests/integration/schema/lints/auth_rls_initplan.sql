-- Policies that call auth.uid(), auth.jwt(), auth.role() or current_setting() per row instead of
-- once per statement as `(select ...)` (splinter's auth_rls_initplan).
select schemaname || '.' || tablename || ': ' || policyname as offender
from pg_catalog.pg_policies p,
     lateral (select coalesce(p.qual, '') || ' ' || coalesce(p.with_check, '') as expression) e
where (select count(*) from regexp_matches(e.expression, '(auth\.(uid|jwt|role)|current_setting)\(', 'g'))
    > (select count(*) from regexp_matches(e.expression, 'SELECT (auth\.(uid|jwt|role)|current_setting)\(', 'g'))
order by 1

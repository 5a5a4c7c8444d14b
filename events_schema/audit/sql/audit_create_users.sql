-- Throwaway users for the audit; their addresses cannot be delivered (.invalid, RFC 2606).
insert into auth.users (id, email, raw_user_meta_data)
select id, 'rls-audit-' || id || '@audit.invalid', '{"rls_audit": true}'::jsonb
from unnest(%(ids)s::uuid[]) as id

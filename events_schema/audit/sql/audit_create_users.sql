-- Throwaway users for the audit; their addresses cannot be delivered (.invalid, RFC 2606).
-- Every column the project reads is set: GoTrue's auth.users has no defaults (not even the id).
insert into auth.users (id, email, created_at, updated_at, raw_user_meta_data)
select id, 'rls-audit-' || id || '@audit.invalid', %(signed_up_at)s, %(signed_up_at)s, '{"rls_audit": true}'::jsonb
from unnest(%(ids)s::uuid[]) as id

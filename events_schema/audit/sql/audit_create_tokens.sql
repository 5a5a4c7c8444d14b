-- One throwaway device token per audit user (rolled back with the rest).
insert into public.device_tokens (id, user_id, token, platform)
select id, user_id, 'rls-audit-' || id, 'android'
from unnest(%(ids)s::uuid[], %(user_ids)s::uuid[]) as t (id, user_id)

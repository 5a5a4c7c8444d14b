-- PATCH /device_tokens?id=in.(...): the app refreshing tokens.
update public.device_tokens set last_seen_at = now() where id = any (%(ids)s::uuid[]) returning id

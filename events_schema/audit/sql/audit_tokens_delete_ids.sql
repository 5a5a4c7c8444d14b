-- DELETE /device_tokens?id=in.(...).
delete from public.device_tokens where id = any (%(ids)s::uuid[]) returning id

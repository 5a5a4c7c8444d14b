-- GET /device_tokens: whatever the policies let the caller read.
select id from public.device_tokens where id = any (%(ids)s::uuid[])

-- Tokens the provider called unregistered or invalid: never sent to again.
delete from public.device_tokens
where token = any (%(tokens)s::text[])

-- POST /device_tokens as the app registers a token; RETURNING, as return=representation does.
insert into public.device_tokens (user_id, token, platform)
values (%(user_id)s, 'rls-audit-new-' || gen_random_uuid(), 'ios')
returning id

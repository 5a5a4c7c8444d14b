-- A forgotten user's refused import rows go too: a later replay must not bring their events back.
delete from public.engagement_import_quarantine where user_id = %(user_id)s

-- Whether the quarantine holds any row of a batch (locked by a replay in progress or not).
select exists (select 1 from public.engagement_import_quarantine where batch_id = %(batch_id)s)

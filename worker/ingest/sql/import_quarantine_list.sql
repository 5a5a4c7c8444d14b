-- The quarantine, one row per refused input row (of one batch, or all), in key order: what
-- `python -m worker import --list-rejected` prints. Raw input is cut to its first 200 characters.
select batch_id, "position", reason, received_at, user_id, event_id, left(raw, 200) as raw
from public.engagement_import_quarantine
where %(batch_id)s::text is null or batch_id = %(batch_id)s
order by batch_id, "position"

-- Rows that still fail keep their place, with today's reason (it may differ after a fix).
update public.engagement_import_quarantine q
set reason = r.reason
from unnest(%(positions)s::bigint[], %(reasons)s::text[]) as r("position", reason)
where q.batch_id = %(batch_id)s and q."position" = r."position"

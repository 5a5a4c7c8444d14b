-- Keep refused rows with their raw input and reason. A row already kept (the batch sent again)
-- is left as it is, and so is a row whose event already exists (it was fixed and replayed).
insert into public.engagement_import_quarantine
  (batch_id, "position", raw, csv_columns, reason, event_id, user_id, received_at)
select %(batch_id)s, r."position", r.raw, string_to_array(r.csv_columns, ','), r.reason,
       r.event_id, r.user_id, %(received_at)s
from unnest(%(positions)s::bigint[], %(raws)s::text[], %(csv_columns)s::text[],
            %(reasons)s::text[], %(event_ids)s::uuid[], %(user_ids)s::uuid[])
  as r("position", raw, csv_columns, reason, event_id, user_id)
where not exists (select 1 from public.engagement_events e where e.id = r.event_id)
order by r."position"
on conflict (batch_id, "position") do nothing

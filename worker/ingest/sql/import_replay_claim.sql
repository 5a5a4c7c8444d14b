-- The next chunk of quarantined rows to re-validate, in key order after the previous chunk;
-- rows another replay holds are skipped, so two replays never wait on each other.
select batch_id, "position", raw, csv_columns, received_at
from public.engagement_import_quarantine
where (%(batch_id)s::text is null or batch_id = %(batch_id)s)
  and (batch_id, "position") > (%(after_batch_id)s, %(after_position)s)
order by batch_id, "position"
limit %(limit)s
for update skip locked

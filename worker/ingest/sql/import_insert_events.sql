-- The staged chunk, in one statement: insert the rows whose user exists, skip ids that are
-- already there (a re-sent batch), and report who was unknown. Rows that now pass leave the
-- quarantine (a re-sent or replayed row that was refused before), in the same transaction.
with known as (
  select s.*
  from pg_temp.import_stage s
  where exists (select 1 from public.engagement_users u where u.user_id = s.user_id)
),
inserted as (
  insert into public.engagement_events (id, user_id, "timestamp", event_type, value)
  select id, user_id, "timestamp", event_type, value
  from known
  order by id  -- one lock order for importers writing overlapping ids at once
  on conflict (id) do nothing
  returning 1
),
released as (
  delete from public.engagement_import_quarantine q
  using known k
  where q.batch_id = %(batch_id)s and q."position" = k."position"
)
select (select count(*) from inserted) as inserted,
       array(select s."position" from pg_temp.import_stage s
             where not exists (select 1 from public.engagement_users u where u.user_id = s.user_id)
             order by s."position") as unknown_user_positions

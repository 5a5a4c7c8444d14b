-- TRUNCATE of the event log left the scan's summaries as they were: it fires no row or statement
-- DELETE trigger, only TRUNCATE triggers, and none existed. Found by the summary-write tests
-- (tests/integration/summaries/). An empty log has no activity: the per-type summary is emptied
-- and every user's last_activity_at cleared, in the truncating transaction.
create function public.note_truncated_activity() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from public.engagement_last_activity;
  update public.engagement_users set last_activity_at = null where last_activity_at is not null;
  return null;
end
$$;

create trigger note_truncated_activity after truncate on public.engagement_events
  for each statement execute function public.note_truncated_activity();

revoke all on function public.note_truncated_activity() from public, anon, authenticated;

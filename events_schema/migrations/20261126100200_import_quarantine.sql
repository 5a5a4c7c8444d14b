-- Bulk import (worker/importer.py, `python -m worker import`, the `import_events` task): rows the
-- importer refused are kept here with their raw input and the reason, so nothing sent is lost;
-- `python -m worker import --replay-rejected` re-validates them and moves those that now pass.

create table public.engagement_import_quarantine (
  -- The batch the row came in (given by the sender, or derived from the content) and its
  -- position there (index in a task's batch, line number in a file). One row per input row:
  -- a batch delivered twice quarantines nothing twice.
  batch_id text not null,
  "position" bigint not null,
  -- The input exactly as received: a JSON object, or one CSV line when csv_columns is set.
  -- Text, not jsonb: a malformed line is kept too (invalid UTF-8 as backslash escapes).
  raw text not null,
  csv_columns text[],
  reason text not null,
  -- The id the event gets once it passes (its own id, or the one derived from batch and
  -- position): a re-sent batch does not quarantine again a row that was already replayed.
  event_id uuid not null,
  -- The row's user when it could be read: `forget_user` and erasure remove these rows too.
  user_id uuid,
  received_at timestamptz not null default now(),
  primary key (batch_id, "position")
);
alter table public.engagement_import_quarantine enable row level security;

comment on table public.engagement_import_quarantine is
  'Rows refused by the bulk importer, with the raw input and the reason; replayed by '
  '`python -m worker import --replay-rejected`. Service role only.';

create index engagement_import_quarantine_user_id_idx
  on public.engagement_import_quarantine (user_id) where user_id is not null;

-- Erasure: deleting the auth user removes their quarantined input along with their events.
create function public.engagement_import_quarantine_forget_users() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from public.engagement_import_quarantine q using deleted_users d where q.user_id = d.id;
  return null;
end
$$;
create trigger engagement_import_quarantine_forget_users after delete on auth.users
  referencing old table as deleted_users
  for each statement execute function public.engagement_import_quarantine_forget_users();

-- No policies: users never see the quarantine; only service_role (BYPASSRLS) uses it.
revoke all on table public.engagement_import_quarantine from public, anon, authenticated, service_role;
grant select, insert, update, delete on table public.engagement_import_quarantine to service_role;
revoke all on function public.engagement_import_quarantine_forget_users()
  from public, anon, authenticated;

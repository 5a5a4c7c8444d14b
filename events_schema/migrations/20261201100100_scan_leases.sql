-- The scan's overlap guard as a row, not a session lock (issue 15). Behind a transaction-mode
-- pooler (Supavisor on 6543, PgBouncer pool_mode=transaction) a session advisory lock stays on
-- whichever server connection took it, and a killed worker's backend keeps its lock while its
-- statement runs. A lease is data: one row per rule, naming the scan that holds it and its owner
-- (the Celery task id, so a re-delivered task takes its own lease back at once), and an expiry
-- that the scan renews in every batch transaction. A dead scan's lease expires; nothing stays
-- behind on any server session. Times come from Python (the scan passes them), never now().
create table public.nudge_scan_leases (
  rule text primary key,
  scan_id uuid not null,
  owner text not null,
  acquired_at timestamptz not null,
  expires_at timestamptz not null
);
alter table public.nudge_scan_leases enable row level security;

-- As the engine's other tables: no user policies, only service_role (which bypasses RLS).
revoke all on table public.nudge_scan_leases from public, anon, authenticated, service_role;
grant select, insert, update, delete on table public.nudge_scan_leases to service_role;

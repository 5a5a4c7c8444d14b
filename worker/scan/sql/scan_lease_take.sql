-- Take the rule's lease: free, expired (its scan died or stalled past its expiry), or already
-- this owner's (the same Celery task, re-delivered after its worker died). No row back: another
-- live scan holds it.
insert into public.nudge_scan_leases as l (rule, scan_id, owner, acquired_at, expires_at)
values (%(rule)s, %(scan_id)s, %(owner)s, %(now)s, %(expires_at)s)
on conflict (rule) do update
  set scan_id = excluded.scan_id,
      owner = excluded.owner,
      acquired_at = excluded.acquired_at,
      expires_at = excluded.expires_at
  where l.owner = excluded.owner or l.expires_at <= excluded.acquired_at
returning l.scan_id

-- First statement of each batch transaction: push the expiry on, if this scan still holds the
-- lease. The row lock it takes lasts until the batch commits, so a scan taking over an expired
-- lease waits for the batch in flight; no row back: the lease was taken over, stop.
update public.nudge_scan_leases
set expires_at = %(expires_at)s
where rule = %(rule)s and scan_id = %(scan_id)s
returning expires_at

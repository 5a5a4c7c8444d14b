-- The rule's scan is over (done, or failed): free the lease if this scan still holds it.
delete from public.nudge_scan_leases
where rule = %(rule)s and scan_id = %(scan_id)s

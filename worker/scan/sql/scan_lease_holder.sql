-- Who holds the rule's lease, and until when: for the note of a scan that gave up waiting.
select owner, expires_at
from public.nudge_scan_leases
where rule = %(rule)s

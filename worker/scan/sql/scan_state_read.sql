select threshold_hours, event_types, scanned_through, full_scan_at, mode
from public.nudge_scan_state
where rule = %(state_key)s

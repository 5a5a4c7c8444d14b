-- When each rule was last scanned (the scan's as_of) and last fully scanned; the age is computed
-- in Python from its own clock, never the database's now().
select rule, scanned_through, full_scan_at
from public.nudge_scan_state
where rule = any(%(rules)s)

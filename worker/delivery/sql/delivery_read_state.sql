-- The dispatcher's state as health and metrics report it (no lock).
select feed_cursor is not null as started, provider, last_pass_at, caught_up_at, paused_until, pause_reason
from public.nudge_delivery_state
where id

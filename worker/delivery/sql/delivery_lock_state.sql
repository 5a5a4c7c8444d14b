-- A dispatcher's pass, in its batch transaction: the state row, locked until the transaction
-- ends. SKIP LOCKED: while another dispatcher holds it, no row, and this one stands aside.
select feed_cursor, paused_until, pause_reason, caught_up_at
from public.nudge_delivery_state
where id
for update skip locked

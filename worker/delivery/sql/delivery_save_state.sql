-- The end of a batch, in its transaction: where the dispatcher stands in the feed (every
-- nudge_sent before it has its outcome), and whether the provider asked it to wait.
update public.nudge_delivery_state
set feed_cursor = %(feed_cursor)s,
    provider = %(provider)s,
    last_pass_at = %(now)s,
    caught_up_at = case when %(caught_up)s then %(now)s else caught_up_at end,
    paused_until = %(paused_until)s,
    pause_reason = %(pause_reason)s
where id

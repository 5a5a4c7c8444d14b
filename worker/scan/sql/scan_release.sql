-- Users decided for good this time (nudged, returned, opted out) are no longer pending.
delete from public.nudge_pending
where rule = %(rule)s and user_id = any (%(user_ids)s::uuid[])

-- Record how far this rule has been scanned, and in which mode; a full scan also resets the
-- reconcile clock.
insert into public.nudge_scan_state as s
  (rule, threshold_hours, event_types, scanned_through, full_scan_at, mode)
values (%(state_key)s, %(threshold_hours)s, %(event_types)s, %(as_of)s, %(as_of)s, %(mode)s)
on conflict (rule) do update
  set threshold_hours = excluded.threshold_hours,
      event_types = excluded.event_types,
      scanned_through = excluded.scanned_through,
      full_scan_at = case when %(full)s then excluded.full_scan_at else s.full_scan_at end,
      mode = excluded.mode

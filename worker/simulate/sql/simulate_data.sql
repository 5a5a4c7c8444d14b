-- Is there anything to replay? Users signed up by the window's last beat, and whether any
-- activity falls within the window (each answered by an index).
select (select count(*) from public.engagement_users u where u.signed_up_at <= %(last_beat)s) as users,
       exists (select 1 from public.engagement_events e
                where e."timestamp" >= %(window_start)s and e."timestamp" <= %(last_beat)s
                  and not e.is_deleted
                  and e.event_type <> all (public.engagement_reserved_event_types())) as active

-- A forgotten user's stored broadcasts, which Realtime could still replay to their app.
select public.engagement_realtime_forget_user(%(user_id)s::uuid)

-- Per user of a batch: opted out since the decision?, and their device tokens, most recently
-- seen first.
select u.user_id,
       coalesce(eu.nudges_opt_out, false) as opted_out,
       coalesce(array_agg(t.token order by t.last_seen_at desc) filter (where t.token is not null), '{}') as tokens,
       coalesce(array_agg(t.platform order by t.last_seen_at desc) filter (where t.token is not null), '{}') as platforms
from unnest(%(user_ids)s::uuid[]) as u (user_id)
left join public.engagement_users eu on eu.user_id = u.user_id
left join public.device_tokens t on t.user_id = u.user_id
group by u.user_id, eu.nudges_opt_out

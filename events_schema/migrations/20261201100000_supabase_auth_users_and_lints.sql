-- Supabase for real (issue 9): sign-up time where GoTrue's auth.users.created_at is NULL, and the
-- findings of Supabase's database linter (splinter) on the earlier migrations.

-- Sign-up time. GoTrue's auth.users.created_at is nullable with no default: GoTrue fills it, but
-- an admin script or an import of users may leave it NULL, and copying that NULL into the NOT NULL
-- engagement_users.signed_up_at made the whole insert into auth.users fail. The rule:
--   * created_at, when the row has one, is the sign-up time (on insert and on every update, so a
--     created_at filled in or corrected later moves signed_up_at with it);
--   * a user inserted without one signed up when the inserting statement started
--     (statement_timestamp(): the clock of the only party present; no caller's time reaches a
--     trigger). It is a record of when the row appeared, like engagement_events' "timestamp"
--     default, not the time of a decision: the engine still decides against the time it is given;
--   * an update that leaves created_at NULL keeps the sign-up time already recorded: otherwise
--     every login (GoTrue updates last_sign_in_at) would make the user look newly signed up.
create or replace function public.sync_engagement_users() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.engagement_users as u (user_id, signed_up_at, timezone, nudges_opt_out)
  select c.id, coalesce(c.created_at, known.signed_up_at, pg_catalog.statement_timestamp()),
         public.valid_time_zone(c.raw_user_meta_data ->> 'timezone'),
         coalesce(c.raw_user_meta_data ->> 'nudges_opt_out' = 'true', false)
  from changed_users c
  left join public.engagement_users known on known.user_id = c.id
  on conflict (user_id) do update
    set signed_up_at = excluded.signed_up_at,
        timezone = excluded.timezone,
        nudges_opt_out = excluded.nudges_opt_out;
  return null;
end
$$;

-- splinter function_search_path_mutable (WARN): both functions ran with the caller's search_path.
-- Their bodies already name pg_catalog; an empty path leaves nothing for a caller to redirect.
alter function public.engagement_feed_stamp_update() set search_path = '';
alter function public.engagement_feed_wake_consumers() set search_path = '';

-- splinter unindexed_foreign_keys (INFO): nudge_pending_user_id_fkey had no index leading with
-- user_id (the primary key leads with rule), so deleting a user scanned the whole table.
create index nudge_pending_user_id_idx on public.nudge_pending (user_id);

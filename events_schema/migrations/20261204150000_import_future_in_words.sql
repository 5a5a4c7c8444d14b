-- Import messages say how far in the future a refused timestamp is as people say it ("72 years",
-- not "2274565800 s"): seconds below an hour (near the allowed clock skew, where they matter),
-- then hours below 48, days below two years, then years. worker/ingest/rows.py ahead_text() is
-- the same integer arithmetic, so the Python importer and import_events() give one message
-- (tests/integration/ingest/import_cases.py holds both to it). engagement_import_check is as in
-- 20261201100200_import_events_rpc.sql but for that message; `create or replace` keeps its grants.

-- Whole seconds ahead, in words: s under 3600, else h (rounded) under 172800, else days
-- (rounded) under 63072000 (730 days), else years of 365.25 days (rounded).
create function public.engagement_import_ahead(seconds bigint) returns text
language sql immutable strict parallel safe set search_path = ''
as $$
  select case
    when seconds < 3600 then seconds || ' s'
    when seconds < 172800 then (seconds + 1800) / 3600 || ' h'
    when seconds < 63072000 then (seconds + 43200) / 86400 || ' days'
    else (seconds + 15778800) / 31557600 || ' years'
  end
$$;

revoke all on function public.engagement_import_ahead(bigint) from public, anon, authenticated;
grant execute on function public.engagement_import_ahead(bigint) to service_role;

-- One event checked by the rules of worker/ingest/rows.py IncomingEvent, with the same
-- messages, every problem of the row in field order: `reason` NULL and the columns to insert,
-- or the reason. The user's existence is checked by the caller, for the whole batch at once.
create or replace function public.engagement_import_check(
  elem jsonb, received_at timestamptz, max_value_bytes bigint, max_skew_seconds int, reserved text[],
  out reason text, out id uuid, out user_id uuid, out "timestamp" timestamptz, out event_type text,
  out value jsonb)
language plpgsql stable parallel safe set search_path = ''
as $$
declare
  problems text[] := '{}';
  kind text;
  shown text;
  parts text[];
  stamp timestamptz;
  ahead interval;
  size bigint;
  extra text;
begin
  if jsonb_typeof(elem) <> 'object' then
    reason := format('expected a JSON object, got %s %s', jsonb_typeof(elem), public.engagement_import_show(elem));
    return;
  end if;

  kind := jsonb_typeof(elem -> 'id');
  if kind is not null and kind <> 'null' then
    if kind <> 'string' then
      problems := problems || format('id must be a UUID string, got %s %s', kind,
                                     public.engagement_import_show(elem -> 'id'));
    else
      id := public.engagement_import_uuid(elem ->> 'id');
      if id is null then
        problems := problems || format('id %s is not a UUID', public.engagement_import_show(elem -> 'id'));
      end if;
    end if;
  end if;

  kind := jsonb_typeof(elem -> 'user_id');
  if kind is null then
    problems := problems || 'user_id is required'::text;
  else
    if kind <> 'string' then
      problems := problems || format('user_id must be a UUID string, got %s %s', kind,
                                     public.engagement_import_show(elem -> 'user_id'));
    else
      user_id := public.engagement_import_uuid(elem ->> 'user_id');
      if user_id is null then
        problems := problems || format('user_id %s is not a UUID', public.engagement_import_show(elem -> 'user_id'));
      end if;
    end if;
  end if;

  kind := jsonb_typeof(elem -> 'event_type');
  if kind is null then
    problems := problems || 'event_type is required'::text;
  else
    event_type := elem ->> 'event_type';
    shown := case when kind <> 'string' or event_type !~ '^[a-z][a-z0-9_]{0,62}$' or event_type = any (reserved)
                  then public.engagement_import_show(elem -> 'event_type') end;
    if kind <> 'string' then
      problems := problems || format('event_type must be a string, got %s %s', kind, shown);
    elsif event_type !~ '^[a-z][a-z0-9_]{0,62}$' then
      problems := problems || format('event_type %s must be lowercase snake_case: a letter, then at most 62 '
                                     'letters, digits or underscores (^[a-z][a-z0-9_]{0,62}$)', shown);
    elsif event_type = any (reserved) then
      problems := problems || format('event_type %s is reserved for the nudge engine (reserved: %s)',
                                     shown, array_to_string(reserved, ', '));
    end if;
  end if;

  kind := jsonb_typeof(elem -> 'timestamp');
  if kind is not null and kind <> 'null' then
    -- Shown in every message below, so made for valid timestamps too: cheaply when it is short
    -- and made of the characters of a timestamp (nothing to escape or shorten).
    shown := case when kind = 'string' and elem ->> 'timestamp' ~ '^[0-9A-Za-z :.+-]{1,60}$'
                  then '"' || (elem ->> 'timestamp') || '"'
                  else public.engagement_import_show(elem -> 'timestamp') end;
    -- rows.py TIMESTAMP_FORMAT, then the ranges datetime.fromisoformat checks.
    parts := regexp_match(elem ->> 'timestamp',
      '^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]{1,6})?)?(Z|([+-])([0-9]{2}):([0-9]{2}))?)?$');
    if kind <> 'string' then
      problems := problems || format('timestamp must be an ISO-8601 string with a UTC offset, got %s %s', kind, shown);
    elsif not coalesce(case  -- in this order: a later test is only safe once the earlier ones passed
            when parts is null or parts[1]::int < 1 or parts[2]::int not between 1 and 12 then false
            when parts[3]::int not between 1 and extract(day from make_date(parts[1]::int, parts[2]::int, 1)
                                                           + interval '1 month' - interval '1 day') then false
            else coalesce(parts[4]::int, 0) <= 23 and coalesce(parts[5]::int, 0) <= 59
                 and coalesce(parts[6]::int, 0) <= 59
                 and coalesce(parts[10]::int * 60 + parts[11]::int, 0) < 1440 end, false) then
      problems := problems || format('timestamp %s is not an ISO-8601 date and time', shown);
    elsif parts[8] is null then
      problems := problems || format('timestamp %s has no UTC offset, so the instant is ambiguous; '
                                     'add one, e.g. Z or +02:00', shown);
    else
      stamp := make_timestamptz(parts[1]::int, parts[2]::int, parts[3]::int, parts[4]::int, parts[5]::int,
                                coalesce(parts[6]::numeric, 0) + coalesce(('0' || parts[7])::numeric, 0), 'UTC')
               - make_interval(mins => case when parts[9] = '-' then -1 else 1 end
                                       * coalesce(parts[10]::int * 60 + parts[11]::int, 0));
      ahead := stamp - received_at;
      if stamp < '0001-01-01 00:00:00+00' or stamp >= '10000-01-01 00:00:00+00' then
        problems := problems || format('timestamp %s is out of range', shown);
      elsif ahead > make_interval(secs => max_skew_seconds) then
        problems := problems || format(
          'timestamp %s is %s in the future (now is %s); at most %s s of clock skew is allowed', shown,
          public.engagement_import_ahead(round(extract(epoch from ahead)::float8)::bigint),
          to_char(received_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00', max_skew_seconds);
      else
        "timestamp" := stamp;
      end if;
    end if;
  end if;

  kind := jsonb_typeof(elem -> 'value');
  if kind is null then
    value := '{}';
  elsif kind <> 'object' then
    problems := problems || format('value must be a JSON object, got %s %s', kind,
                                   public.engagement_import_show(elem -> 'value'));
  else
    value := elem -> 'value';
    -- jsonb's text is never shorter than the compact JSON: only a long one needs counting.
    size := case when octet_length(value::text) > max_value_bytes then public.engagement_import_json_size(value) else 0 end;
    if size > max_value_bytes then
      problems := problems || format('value is %s bytes as JSON, over the limit of %s bytes', size, max_value_bytes);
    end if;
  end if;

  for extra in select k from jsonb_object_keys(elem) as k
               where k <> all (array['id', 'user_id', 'event_type', 'timestamp', 'value']) loop
    problems := problems || format('unknown field %s (fields are: id, user_id, event_type, timestamp, value)',
                                   public.engagement_import_show(to_jsonb(extra), 40));
  end loop;

  if cardinality(problems) > 0 then
    reason := array_to_string(problems, '; ');
    id := null; user_id := null; "timestamp" := null; event_type := null; value := null;
  end if;
end
$$;

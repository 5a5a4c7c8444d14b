-- The batch import endpoint (issue 11): `POST /rpc/import_events` with {"batch": [...], "batch_id": "..."}
-- and the service key. It validates each event by the same rules as the Python importer
-- (worker/ingest/rows.py; tests/integration/ingest/import_cases.py holds both to one table of
-- cases), inserts the valid rows once, quarantines each refused row with its reason and
-- position, and returns the summary the `import_events` task returns.
--
-- The call's limits and the two validation limits are read from settings an operator can change with
-- `alter database ... set "engagement.<name>" = '...'`; unset, they are the Python defaults:
--   engagement.import_max_value_bytes  65536     (IMPORT_MAX_VALUE_BYTES)
--   engagement.max_clock_skew_seconds  300       (MAX_CLOCK_SKEW_SECONDS)
--   engagement.import_rpc_max_rows     10000     events per call, checked before any row
--   engagement.import_rpc_max_bytes    16777216  size of the batch argument, checked likewise
--
-- Helpers are SECURITY INVOKER like the endpoint: the caller (service_role) needs them, nobody
-- else does.

-- SHA-1, which UUIDv5 (the ids of rows sent without one) is made of. PostgreSQL has no built-in
-- sha1(); this one in PL/pgSQL works everywhere, about 0.2 ms a hash. Where pgcrypto can be had
-- (Supabase installs it in schema `extensions`; plain PostgreSQL ships it in contrib) its C
-- digest() is used instead, about 30x faster per derived id (measured): see engagement_import_sha1.
create function public.engagement_import_sha1_plpgsql(message bytea) returns bytea
language plpgsql immutable strict parallel safe set search_path = ''
as $$
declare
  bits constant int8 := 4294967295;
  len int := octet_length(message);
  padded bytea;
  w int8[] := array_fill(0::int8, array[80]);
  h0 int8 := 1732584193; h1 int8 := 4023233417; h2 int8 := 2562383102;
  h3 int8 := 271733878; h4 int8 := 3285377520;
  a int8; b int8; c int8; d int8; e int8; f int8; k int8; t int8;
  base int;
begin
  padded := message || '\x80'::bytea || decode(repeat('00', ((55 - len % 64) % 64 + 64) % 64), 'hex')
            || int8send(len::int8 * 8);
  for block in 0 .. octet_length(padded) / 64 - 1 loop
    base := block * 64;
    for i in 1 .. 16 loop
      w[i] := ('x' || encode(substring(padded from base + (i - 1) * 4 + 1 for 4), 'hex'))::bit(32)::int8 & bits;
    end loop;
    for i in 17 .. 80 loop
      t := w[i - 3] # w[i - 8] # w[i - 14] # w[i - 16];
      w[i] := ((t << 1) | (t >> 31)) & bits;
    end loop;
    a := h0; b := h1; c := h2; d := h3; e := h4;
    for i in 1 .. 80 loop
      if i <= 20 then f := (b & c) | ((~b & bits) & d); k := 1518500249;
      elsif i <= 40 then f := b # c # d; k := 1859775393;
      elsif i <= 60 then f := (b & c) | (b & d) | (c & d); k := 2400959708;
      else f := b # c # d; k := 3395469782;
      end if;
      t := ((((a << 5) | (a >> 27)) & bits) + f + e + k + w[i]) & bits;
      e := d; d := c; c := ((b << 30) | (b >> 2)) & bits; b := a; a := t;
    end loop;
    h0 := (h0 + a) & bits; h1 := (h1 + b) & bits; h2 := (h2 + c) & bits;
    h3 := (h3 + d) & bits; h4 := (h4 + e) & bits;
  end loop;
  return decode(lpad(to_hex(h0), 8, '0') || lpad(to_hex(h1), 8, '0') || lpad(to_hex(h2), 8, '0')
                || lpad(to_hex(h3), 8, '0') || lpad(to_hex(h4), 8, '0'), 'hex');
end
$$;

-- pgcrypto where it is installed (any schema) or installable (into `extensions`, as on
-- Supabase); the PL/pgSQL SHA-1 otherwise. Both give the same bytes (tested).
do $$
declare
  crypto_schema text;
begin
  select n.nspname into crypto_schema
  from pg_catalog.pg_extension x join pg_catalog.pg_namespace n on n.oid = x.extnamespace
  where x.extname = 'pgcrypto';
  if crypto_schema is null
     and exists (select 1 from pg_catalog.pg_available_extensions where name = 'pgcrypto') then
    create schema if not exists extensions;
    grant usage on schema extensions to service_role;
    create extension pgcrypto with schema extensions;
    crypto_schema := 'extensions';
  end if;
  if crypto_schema is null then
    raise notice 'pgcrypto is not available: UUIDv5 ids use the PL/pgSQL SHA-1 (about 0.2 ms a row)';
    create function public.engagement_import_sha1(message bytea) returns bytea
    language sql immutable strict parallel safe set search_path = ''
    as $f$ select public.engagement_import_sha1_plpgsql(message) $f$;
  else
    execute format(
      'create function public.engagement_import_sha1(message bytea) returns bytea '
      'language sql immutable strict parallel safe set search_path = '''' '
      'as $f$ select %I.digest(message, ''sha1'') $f$', crypto_schema);
  end if;
end
$$;

-- The id of a row sent without one: uuid5(EVENT_ID_NAMESPACE, '<batch_id>:<position>'), exactly
-- worker/ingest/rows.py derive_event_id, so either path gives a row the same id.
create function public.engagement_import_event_id(batch_id text, "position" bigint) returns uuid
language plpgsql immutable strict parallel safe set search_path = ''
as $$
declare
  h bytea := substring(public.engagement_import_sha1(
    '\x5b0a4f532f644d4e9a513c1e0c0d8f6e'::bytea || convert_to(batch_id || ':' || "position", 'UTF8')) from 1 for 16);
begin
  return encode(set_byte(set_byte(h, 6, (get_byte(h, 6) & 15) | 80), 8, (get_byte(h, 8) & 63) | 128), 'hex')::uuid;
end
$$;

-- A UUID in the forms the Python importer (pydantic) accepts: hyphenated, 32 hex digits,
-- {hyphenated}, urn:uuid:hyphenated; NULL for anything else.
create function public.engagement_import_uuid(candidate text) returns uuid
language plpgsql immutable parallel safe set search_path = ''
as $$
begin
  return case
    when candidate ~ '^\{?[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\}?$'
         and (left(candidate, 1) = '{') = (right(candidate, 1) = '}') then candidate::uuid
    when candidate ~ '^urn:uuid:[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$' then substr(candidate, 10)::uuid
    when candidate ~ '^[0-9a-fA-F]{32}$' then candidate::uuid
  end;
end
$$;

-- Text with every character outside printable ASCII written as \uXXXX (surrogate pairs above
-- U+FFFF), as Python's json.dumps(ensure_ascii=True) writes it.
create function public.engagement_import_ascii(json_text text) returns text
language sql immutable strict parallel safe set search_path = ''
as $$
  select case when json_text !~ '[^\x01-\x7e]' then json_text else (
    select string_agg(case
      when pg_catalog.ascii(ch) < 127 then ch
      when pg_catalog.ascii(ch) < 65536 then '\u' || lpad(to_hex(pg_catalog.ascii(ch)), 4, '0')
      else '\u' || to_hex(55296 + ((pg_catalog.ascii(ch) - 65536) >> 10))
        || '\u' || to_hex(56320 + ((pg_catalog.ascii(ch) - 65536) & 1023))
      end, '' order by n)
    from regexp_split_to_table(json_text, '') with ordinality as chars(ch, n)) end
$$;

-- A JSON number as Python writes the value json.loads made of it: integers digit for digit,
-- others as repr(float) (shortest round-trip digits; exponent form below 1e-4 and from 1e16).
create function public.engagement_import_number(num numeric) returns text
language plpgsql immutable strict parallel safe set search_path = ''
as $$
declare
  shown text := num::text;
  parts text[];
  digits text;
  point int;  -- the decimal point's position after the first `point` digits (Python's decpt)
  sign text := '';
begin
  if position('.' in shown) = 0 then
    return shown;
  end if;
  shown := num::float8::text;
  if left(shown, 1) = '-' then sign := '-'; shown := substr(shown, 2); end if;
  parts := regexp_match(shown, '^([0-9]+)(?:\.([0-9]+))?(?:e([-+][0-9]+))?$');
  digits := parts[1] || coalesce(parts[2], '');
  point := length(parts[1]) + coalesce(parts[3]::int, 0);
  if digits ~ '^0+$' then
    return sign || '0.0';
  end if;
  -- Leading zeros (0.0123) move the point left; trailing zeros are not significant.
  point := point - (length(digits) - length(ltrim(digits, '0')));
  digits := rtrim(ltrim(digits, '0'), '0');
  if point > -4 and point <= 16 then
    if point <= 0 then
      return sign || '0.' || repeat('0', -point) || digits;
    elsif point >= length(digits) then
      return sign || digits || repeat('0', point - length(digits)) || '.0';
    end if;
    return sign || left(digits, point) || '.' || substr(digits, point + 1);
  end if;
  return sign || left(digits, 1) || case when length(digits) > 1 then '.' || substr(digits, 2) else '' end
    || 'e' || case when point - 1 < 0 then '-' else '+' end || lpad(abs(point - 1)::text, 2, '0');
end
$$;

-- A JSON value as Python's json.dumps(..., ensure_ascii=True) writes it: compact and with keys
-- sorted for a batch's content id (sort_keys, separators ",", ":"), or with its default ", " and
-- ": " for a message. Key order is jsonb's unless sorted (jsonb does not keep the sender's).
create function public.engagement_import_python_json(v jsonb, canonical boolean) returns text
language plpgsql immutable strict parallel safe set search_path = ''
as $$
declare
  comma constant text := case when canonical then ',' else ', ' end;
  colon constant text := case when canonical then ':' else ': ' end;
begin
  -- Scalars are written in place (a call per container, not per value): strings as jsonb writes
  -- them unless they hold non-ASCII, integers as they are.
  case jsonb_typeof(v)
    when 'object' then
      return '{' || coalesce((
        select string_agg(case when e.key ~ '[^\x01-\x7e]' then public.engagement_import_ascii(to_jsonb(e.key)::text)
                               else to_jsonb(e.key)::text end || colon || case
                            when jsonb_typeof(e.value) in ('object', 'array')
                              then public.engagement_import_python_json(e.value, canonical)
                            when jsonb_typeof(e.value) = 'string' and e.value::text !~ '[^\x01-\x7e]' then e.value::text
                            when jsonb_typeof(e.value) = 'number' and e.value::text !~ '[.]' then e.value::text
                            else public.engagement_import_python_json(e.value, canonical) end,
                          comma order by case when canonical then e.key collate "C" end, e.n)
        from jsonb_each(v) with ordinality as e(key, value, n)), '') || '}';
    when 'array' then
      return '[' || coalesce((
        select string_agg(public.engagement_import_python_json(a.value, canonical), comma order by a.n)
        from jsonb_array_elements(v) with ordinality as a(value, n)), '') || ']';
    when 'string' then
      return public.engagement_import_ascii(v::text);
    when 'number' then
      return public.engagement_import_number(v::text::numeric);
    else
      return v::text;
  end case;
end
$$;

-- A value as it appears in a message (worker/ingest/rows.py show()): shortened to `width`.
create function public.engagement_import_show(v jsonb, width int default 80) returns text
language sql immutable strict parallel safe set search_path = ''
as $$
  select case when length(t) <= width then t else left(t, width - 1) || '…' end
  from (select public.engagement_import_python_json(v, false) as t) as shown
$$;

-- The size in bytes of a value as compact JSON (what IMPORT_MAX_VALUE_BYTES limits): jsonb's
-- text less the one space it writes after each ':' and ','.
create function public.engagement_import_json_size(v jsonb) returns bigint
language sql immutable strict parallel safe set search_path = ''
as $$
  select octet_length(v::text) - coalesce((
    select sum(case jsonb_typeof(item)
                 when 'object' then greatest(2 * (select count(*) from jsonb_object_keys(item)) - 1, 0)
                 when 'array' then greatest(jsonb_array_length(item) - 1, 0)
                 else 0 end)
    from jsonb_path_query(v, 'strict $.**') as item), 0)
$$;

-- One event checked by the rules of worker/ingest/rows.py IncomingEvent, with the same
-- messages, every problem of the row in field order: `reason` NULL and the columns to insert,
-- or the reason. The user's existence is checked by the caller, for the whole batch at once.
create function public.engagement_import_check(
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
          'timestamp %s is %s s in the future (now is %s); at most %s s of clock skew is allowed', shown,
          round(extract(epoch from ahead)::float8)::numeric,
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

create function public.import_events(batch jsonb, batch_id text default null) returns jsonb
language plpgsql volatile set search_path = ''
as $$
#variable_conflict use_column
declare
  max_rows int := coalesce(nullif(current_setting('engagement.import_rpc_max_rows', true), ''), '10000')::int;
  max_bytes int := coalesce(nullif(current_setting('engagement.import_rpc_max_bytes', true), ''), '16777216')::int;
  max_value_bytes int := coalesce(nullif(current_setting('engagement.import_max_value_bytes', true), ''), '65536')::int;
  max_skew int := coalesce(nullif(current_setting('engagement.max_clock_skew_seconds', true), ''), '300')::int;
  -- When the request arrived: the start of PostgREST's transaction. A row without a timestamp
  -- gets it, and the clock-skew rule measures against it.
  received timestamptz := pg_catalog.transaction_timestamp();
  reserved text[];
  bid text := nullif(batch_id, '');
  summary jsonb;
begin
  if batch is null or jsonb_typeof(batch) <> 'array' then
    raise exception 'batch must be a JSON array of event objects, got %', coalesce(jsonb_typeof(batch), 'nothing')
      using errcode = '22023', hint = 'POST {"batch": [{"user_id": "...", "event_type": "..."}], "batch_id": "..."}';
  end if;
  if jsonb_array_length(batch) > max_rows then
    raise exception 'batch has % events, more than the % one call may import', jsonb_array_length(batch), max_rows
      using errcode = 'PT413', hint = format('Send at most %s events per call, each call with its own batch_id.', max_rows);
  end if;
  if pg_column_size(batch) > max_bytes then
    raise exception 'batch is % bytes, more than the % one call may import', pg_column_size(batch), max_bytes
      using errcode = 'PT413', hint = 'Send the events in smaller calls, each with its own batch_id.';
  end if;

  select array_agg(t order by t collate "C") into reserved
  from unnest(public.engagement_reserved_event_types()) as t;
  -- Without a batch id, the content's hash, as worker/ingest/sources.py batch_content_id makes
  -- it for the task's (batch, positions=None, unparsed=None): a retried call dedupes.
  bid := coalesce(bid, 'sha256:' || left(encode(sha256(convert_to(
    '[' || public.engagement_import_python_json(batch, true) || ',null,null]', 'UTF8')), 'hex'), 32));

  with input as (
    select (e.n - 1)::bigint as "position", e.elem, c.*
    from jsonb_array_elements(batch) with ordinality as e(elem, n)
    cross join lateral public.engagement_import_check(e.elem, received, max_value_bytes, max_skew, reserved) as c
  ),
  valid as (
    select i."position", coalesce(i.id, public.engagement_import_event_id(bid, i."position")) as id,
           i.user_id, coalesce(i."timestamp", received) as "timestamp", i.event_type, i.value,
           exists (select 1 from public.engagement_users u where u.user_id = i.user_id) as known
    from input i
    where i.reason is null
  ),
  inserted as (
    insert into public.engagement_events (id, user_id, "timestamp", event_type, value)
    select v.id, v.user_id, v."timestamp", v.event_type, v.value
    from valid v
    where v.known
    order by v.id  -- one lock order for importers writing overlapping ids at once
    on conflict (id) do nothing
    returning 1
  ),
  released as (
    -- A row refused before (the batch sent again after a fix) leaves the quarantine.
    delete from public.engagement_import_quarantine q
    using valid v
    where v.known and q.batch_id = bid and q."position" = v."position"
  ),
  refused as (
    select i."position", i.elem, i.reason from input i where i.reason is not null
    union all
    select v."position", i.elem, format('user_id %s is not a user of this project (no such auth user)', v.user_id)
    from valid v join input i using ("position")
    where not v.known
  ),
  kept as (
    insert into public.engagement_import_quarantine
      (batch_id, "position", raw, reason, event_id, user_id, received_at)
    select bid, r."position", r.elem::text, r.reason, r.event_id, r.user_id, received
    from (
      select f.*,
             coalesce(case when jsonb_typeof(f.elem -> 'id') = 'string'
                           then public.engagement_import_uuid(f.elem ->> 'id') end,
                      public.engagement_import_event_id(bid, f."position")) as event_id,
             case when jsonb_typeof(f.elem -> 'user_id') = 'string'
                  then public.engagement_import_uuid(f.elem ->> 'user_id') end as user_id
      from refused f
    ) as r
    -- A row already kept (the batch sent again) stays as it is; so does one whose event exists
    -- (this statement's own inserts are not in its snapshot: hence the second test).
    where not exists (select 1 from public.engagement_events e where e.id = r.event_id)
      and not exists (select 1 from valid v where v.known and v.id = r.event_id)
    order by r."position"
    on conflict (batch_id, "position") do nothing
  )
  select jsonb_build_object(
    'batch_id', bid,
    'inserted', (select count(*) from inserted),
    'duplicates', (select count(*) from valid where known) - (select count(*) from inserted),
    'rejected', (select count(*) from refused),
    -- As the task: at most 1000 errors listed (MAX_REPORTED_ERRORS); the quarantine keeps all.
    'errors', coalesce((select jsonb_agg(jsonb_build_object('index', f."position", 'error', f.reason)
                                         order by f."position")
                        from (select * from refused order by "position" limit 1000) as f), '[]'),
    'errors_omitted', greatest((select count(*) from refused) - 1000, 0))
  into summary;
  return summary;
end
$$;

comment on function public.import_events(jsonb, text) is
  'Batch import for backend callers with the service key (POST /rpc/import_events): validates each '
  'event as the Python importer does, inserts the valid ones once, quarantines the rest; returns '
  '{batch_id, inserted, duplicates, rejected, errors: [{index, error}], errors_omitted}. See docs/import-rpc.md.';

-- Functions are executable by PUBLIC by default: only the service role may run these.
revoke all on function
  public.import_events(jsonb, text),
  public.engagement_import_check(jsonb, timestamptz, bigint, int, text[]),
  public.engagement_import_json_size(jsonb),
  public.engagement_import_show(jsonb, int),
  public.engagement_import_python_json(jsonb, boolean),
  public.engagement_import_number(numeric),
  public.engagement_import_ascii(text),
  public.engagement_import_uuid(text),
  public.engagement_import_event_id(text, bigint),
  public.engagement_import_sha1(bytea),
  public.engagement_import_sha1_plpgsql(bytea)
  from public, anon, authenticated;
grant execute on function
  public.import_events(jsonb, text),
  public.engagement_import_check(jsonb, timestamptz, bigint, int, text[]),
  public.engagement_import_json_size(jsonb),
  public.engagement_import_show(jsonb, int),
  public.engagement_import_python_json(jsonb, boolean),
  public.engagement_import_number(numeric),
  public.engagement_import_ascii(text),
  public.engagement_import_uuid(text),
  public.engagement_import_event_id(text, bigint),
  public.engagement_import_sha1(bytea),
  public.engagement_import_sha1_plpgsql(bytea)
  to service_role;

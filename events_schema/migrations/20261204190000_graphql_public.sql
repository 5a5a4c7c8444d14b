-- GraphQL the way Supabase serves it (issue 19): pg_graphql, and PostgREST exposing the
-- `graphql_public` schema, so POST /rpc/graphql with `Content-Profile: graphql_public` calls
-- graphql_public.graphql(), which resolves the query with the caller's role: RLS applies, and a
-- table shows up only where that role has grants (pg_graphql reflects tables with a primary key).
--
-- Only where the server has pg_graphql: Supabase's image (docker-compose.yml) and projects. On
-- plain PostgreSQL, as the tests run here, it is not installed and this migration does nothing.
-- On Supabase the extension, the schema and the function already exist (Supabase's event
-- trigger makes them, owned by supabase_admin): nothing is created or granted there either. Only
-- a server with pg_graphql but without Supabase's set-up gets the schema and function made here.
do $$
declare
  created_extension boolean := false;
begin
  if not exists (select 1 from pg_available_extensions where name = 'pg_graphql') then
    raise notice 'pg_graphql is not available on this server: GraphQL is not set up (REST only)';
    return;
  end if;
  if not exists (select 1 from pg_extension where extname = 'pg_graphql') then
    create extension pg_graphql;
    created_extension := true;
  end if;
  if created_extension and not exists (select 1 from pg_event_trigger where evtname = 'issue_pg_graphql_access') then
    -- No Supabase set-up reacted to the new extension: let the API roles call its resolver.
    grant usage on schema graphql to anon, authenticated, service_role;
    grant execute on function graphql.resolve(text, jsonb, text, jsonb) to anon, authenticated, service_role;
  end if;
  if not exists (select 1 from pg_namespace where nspname = 'graphql_public') then
    create schema graphql_public;
    grant usage on schema graphql_public to anon, authenticated, service_role;
  end if;
  if to_regprocedure('graphql_public.graphql(text, text, jsonb, jsonb)') is null then
    -- Supabase's entry point, with its signature: PostgREST maps the JSON body's keys to these.
    create function graphql_public.graphql(
      "operationName" text default null,
      query text default null,
      variables jsonb default null,
      extensions jsonb default null
    ) returns jsonb
    language sql
    set search_path = ''
    as $fn$
      select graphql.resolve(
        query := query,
        variables := coalesce(variables, '{}'),
        "operationName" := "operationName",
        extensions := extensions
      );
    $fn$;
    revoke execute on function graphql_public.graphql(text, text, jsonb, jsonb) from public;
    grant execute on function graphql_public.graphql(text, text, jsonb, jsonb) to anon, authenticated, service_role;
  end if;
end
$$;

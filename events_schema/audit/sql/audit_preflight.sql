-- Before auditing: is the schema in place, and which API roles can this session act as?
-- SET ROLE is checked against the session user, as for PostgREST's `authenticator`.
select to_regclass('public.engagement_events') is not null as migrated,
       array(select rolname::text from pg_roles
             where rolname in ('anon', 'authenticated', 'service_role')
               and pg_has_role(session_user, oid, 'member')
             order by rolname) as usable_roles

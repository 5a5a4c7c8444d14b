-- What the Supabase CLI's splitter must see through; this comment; has semicolons.
create table public.cli_shapes (
  id int primary key,
  note text default 'a;b' -- a default with ; inside
);
alter table public.cli_shapes enable row level security;

/* a block comment; with /* nested; */ semicolons */
create function public.cli_shapes_count() returns bigint
language plpgsql set search_path = ''
as $body$
begin
  perform 1; -- statements inside a dollar-quoted body
  return (select count(*) from public.cli_shapes);
end
$body$;

do $$ begin raise notice 'done; really'; end $$;
comment on table public.cli_shapes is 'shapes; for "the CLI"';
insert into public.cli_shapes (id, note) values (1, 'it''s; fine'), (2, $$dollar; quoted$$);;
-- a comment after the last statement is a statement of its own

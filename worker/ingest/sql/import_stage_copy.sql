copy pg_temp.import_stage ("position", id, user_id, "timestamp", event_type, value) from stdin

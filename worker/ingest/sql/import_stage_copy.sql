-- Binary COPY: the server reads the ids, positions and times as they are instead of parsing
-- text (measured about half the time of text COPY for a 5,000-row chunk, and half the client's
-- CPU); the column types are set beside the call (worker/ingest/importer.py, STAGE_TYPES).
copy pg_temp.import_stage ("position", id, user_id, "timestamp", event_type, value) from stdin (format binary)

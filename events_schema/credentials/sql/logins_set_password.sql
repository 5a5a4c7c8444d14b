-- {role} and {verifier} are composed by events_schema/logins.py (identifier, literal): a
-- SCRAM-SHA-256 verifier computed by libpq, so the password itself never reaches the server.
alter role {role} password {verifier}

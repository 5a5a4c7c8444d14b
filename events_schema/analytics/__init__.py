"""Weekly engagement cohorts for analysts: SQL in sql/, run by `python -m events_schema report`."""

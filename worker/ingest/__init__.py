"""Bulk import of events with the service role: validation, quarantine, replay, idempotent batches."""

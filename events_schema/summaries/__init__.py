"""The engine's trigger-kept summaries of the event log: check them against it, rebuild them from it."""

"""The engine's summaries of the event log: check them against it, rebuild them from it, fold its tail."""

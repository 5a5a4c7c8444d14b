"""Deterministic demo data: users in auth.users and a plausible history of their events."""

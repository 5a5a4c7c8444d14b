"""Retention and erasure: soft-deleting old events, and all of one user's."""

"""Embedded PostgreSQL and Valkey from pip packages: the newcomer's and developer's path, not the engine.

Used only where DATABASE_URL / REDIS_URL name no server (`scripts/run`, `scripts/test`).
"""

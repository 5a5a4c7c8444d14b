"""Every scan scenario of tests/integration/scan, again, with DATABASE_URL on PgBouncer in
transaction mode (three server connections): conftest.py's `settings_env` points it there.
Among them: eight concurrent scans, with and without the lease, nudge each due user once."""

from tests.integration.scan.test_scan_scenarios import *  # noqa: F403

"""One scan in a process of its own, so its peak memory (max RSS) is the scan's alone.

`python -m bench.scan_peak --as-of ISO [--full] [--dry-run]` on DATABASE_URL; prints one JSON
line: seconds, max_rss_mb and the scan's totals.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from worker.clock import parse_instant
from worker.scan.scanner import run_scan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    summary = run_scan(parse_instant(args.as_of), full=args.full, dry_run=args.dry_run)
    seconds = time.perf_counter() - start
    # Linux reports ru_maxrss in KiB.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "max_rss_mb": peak_mb, **summary.totals(), "ran": summary.ran}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

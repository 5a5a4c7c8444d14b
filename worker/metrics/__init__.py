"""Prometheus metrics and JSON logs for the engine's workers (issue 12).

`registry` defines the metrics and records them from the task wrappers' summaries; `exporter`
serves every process's numbers (prometheus_client's multiprocess mode); `logs` makes each log
line one JSON object when LOG_FORMAT=json; `cli` is `python -m worker metrics`.
"""

"""Benchmarks, run by hand, never in CI: `python -m bench` measures everything on one dataset
(see bench/__main__.py); the single-purpose scripts beside it remain runnable on their own."""

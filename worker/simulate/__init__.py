"""Replaying the engine's definitions over the past: `python -m worker simulate` (docs/simulate.md)."""

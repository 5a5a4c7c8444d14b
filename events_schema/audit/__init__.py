"""The RLS audit: the contract checked from the outside, as PostgREST applies requests."""

"""Benchmarks: each one against its baseline in the same run (``make bench``; docs/benchmarks.md)."""

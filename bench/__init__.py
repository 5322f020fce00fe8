"""Benchmarks run by ``make bench`` (``python -m bench``); each compares against an anchor."""

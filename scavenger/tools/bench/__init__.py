"""Benchmarks behind ``scavenger bench``: measured, never asserted in tests."""

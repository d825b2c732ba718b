"""Benchmarks of the carbon-router kernel against two baseline scorers (run with ``make bench``)."""

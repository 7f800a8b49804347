"""Gating a plan's results: ``--fail-under`` thresholds, JUnit XML, and run-vs-run comparison
with bootstrap confidence intervals."""

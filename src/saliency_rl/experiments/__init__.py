"""Whole-pipeline jobs: the demo, sweeps and reports."""

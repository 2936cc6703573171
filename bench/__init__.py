"""Benchmark and accuracy harness (`streamscribe bench`, `python -m bench`)."""

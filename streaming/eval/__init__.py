"""The evaluation corpus and scoring, shared by tests, benchmarks and demos.

The server never imports this package.
"""

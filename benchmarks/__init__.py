"""Benchmarks for the image pipeline: ratios against baselines measured in the same run.

Run them with `benchmarks/run [peers|memory|e2e|coldstart|worst|burst ...] [--quick]`.
"""

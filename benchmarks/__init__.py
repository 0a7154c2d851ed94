"""Benchmarks for the image pipeline: ratios against baselines measured in the same run.

Run them with `benchmarks/run [core|memory|e2e|coldstart|synth ...] [--quick]`.
"""

"""Benchmarks of docs/performance.md's workloads (W0, W1, W2, W3, W7): neurona against its peer in the same process.

Run with `python -m benchmarks.run [--only W1,W2] [--threads 1|all|1,all]`; never part of CI.
"""

"""Benchmarks of docs/performance.md's workloads (W0, W1, W2, W3, W7): neurona against its peer in the same process.

Run with `python -m benchmarks.run [--only W1,W2] [--threads 1|all|1,all]`; never part of CI.
Threads and convolutions (issue 11): `python -m benchmarks.conv_sweep [--quick]` (conv2d forward +
both gradients against PyTorch over a grid of shapes), `python -m benchmarks.thread_kernels`
(neurona's split kernels at 1 and n threads), `python -m benchmarks.cost_curves [--quick]`
(throughput against batch and width, PNG).
"""

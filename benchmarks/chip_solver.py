"""Speed of the emulated chip's first-spike solver (any tau_m / tau_s ratio, per-neuron
time constants, per-trial thresholds): the fused CPU loops against the tensor path.

    python benchmarks/chip_solver.py --json benchmarks/results/chip_solver_cpu.json

Layers of the chip networks: Yin-Yang 21 x 120 and 121 x 3 (inputs x5, bias), MNIST 16x16
256 x 246 and 246 x 10. Random input times in [0, 3] tau_s (20 % silent), weights and a
chip-like spread of time constants (+-5 %) and thresholds. Samples per second on one
thread (``--threads``), best of ``--repeats``; both paths' times agree to 1e-8.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from pynn_ttfs.engine import cpu_kernels
from pynn_ttfs.engine.general import solve_first_spike_times_general

LAYERS = {"yinyang hidden 21x120": (21, 120, 0.3), "yinyang output 121x3": (121, 3, 0.3),
          "mnist16 hidden 256x246": (256, 246, 0.05), "mnist16 output 246x10": (246, 10, 0.3)}


def layer(n_pre, n_post, weight_scale, batch, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 3.0, (batch, n_pre))
    t[rng.random((batch, n_pre)) < 0.2] = np.inf
    w = rng.normal(weight_scale, 3 * weight_scale, (n_pre, n_post))
    tau_syn = rng.uniform(0.95, 1.05, n_post)
    tau_mem = tau_syn * rng.uniform(0.95, 1.05, n_post)
    threshold = rng.normal(1.0, 0.03, (batch, n_post))
    return [torch.tensor(v) for v in (t, w, tau_syn, tau_mem, threshold)]


def timed(args, repeats):
    best, out = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = solve_first_spike_times_general(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not cpu_kernels.COMPILED:
        raise SystemExit("numba is not installed: only the tensor path exists")
    rows = []
    for name, (n_pre, n_post, scale) in LAYERS.items():
        inputs = layer(n_pre, n_post, scale, args.batch)
        cpu_kernels.AVAILABLE = True
        solve_first_spike_times_general(*inputs)  # numba compiles (or loads its cache) here
        loops, a = timed(inputs, args.repeats)
        cpu_kernels.AVAILABLE = False
        tensors, b = timed(inputs, args.repeats)
        cpu_kernels.AVAILABLE = True
        both = a.isfinite() & b.isfinite()
        assert torch.equal(a.isfinite(), b.isfinite()) and (a[both] - b[both]).abs().max() < 1e-8
        rows.append({"layer": name, "batch": args.batch, "threads": args.threads,
                     "loops_samples_per_s": args.batch / loops,
                     "tensor_samples_per_s": args.batch / tensors, "speedup": tensors / loops,
                     "fraction_spiking": float(a.isfinite().double().mean())})
    print(f"{'layer':26s} {'loops (samples/s)':>18s} {'tensors (samples/s)':>20s} {'speed-up':>9s}")
    for r in rows:
        print(f"{r['layer']:26s} {r['loops_samples_per_s']:18,.0f} {r['tensor_samples_per_s']:20,.0f} "
              f"{r['speedup']:8.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()

"""Engine speed: forward and forward+backward samples/s of two-layer TTFS networks.

Shapes (inputs incl. bias where the recipe has one - hidden - outputs):
  5-120-3     Yin-Yang: (x, y, 1-x, 1-y) + bias at 0.9 tau_s; hidden layer gets a bias too
  256-246-10  MNIST 16x16 encoding (black pixels silent)
  784-350-10  MNIST 28x28 encoding (black pixels at t_late = 2.0 tau_s)
Inputs: the real MNIST images when the IDX files are found (--data-dir,
$PYNN_TTFS_MNIST_DIR, or ../shared/data/mnist), otherwise synthetic
MNIST-like images with the same statistics (about 80 % black pixels, half of the rest
saturated). Weights: the published initialisation (normal, per-layer mean and std) so a
realistic fraction of neurons spike. tau_m = tau_s = 1, threshold 1.

Timing: wall clock, after one warm-up run, repeated until MIN_SECONDS have passed
(samples/s, the JSON's samples_per_s). The table also shows samples per second of process
CPU time (all threads together; samples_per_cpu_s): on a shared, busy machine with
--threads 1 it estimates the speed of one idle core.
"forward" runs under torch.no_grad(); "forward_backward" runs the forward with weights
requiring grad and calls backward() on the sum of the finite output times.
Peak memory (of the first, warm-up run): on CUDA torch.cuda.max_memory_allocated() minus
the memory allocated before the run; on CPU the growth of the resident set size during the
run (sampled from /proc/self/statm every 0.5 ms by a thread), so memory the process
already holds from earlier runs does not count (0 = no growth).
On a machine whose cores are busy with other work, torch's default multi-threading can
collapse (threads wait for each other); compare with --threads 1 there.
The CPU forward pass of a layer runs one of two compiled loops (pynn_ttfs.engine.cpu_kernels):
neuron by neuron, or all neurons at once along each input's weight row (layers of at least
WIDE_LAYER_MIN neurons, "auto"). --cpu-forward-loops per-neuron wide forces each in turn on
every layer (column "loop"), to compare them on the same inputs.

    python benchmarks/engine.py [--quick] [--json FILE] [--data-dir DIR] [--threads N]
        [--shapes S ...] [--devices cpu cuda] [--batches B ...] [--dtypes float32 float64]
        [--cpu-forward-loops auto per-neuron wide] [--reference-check N]

--reference-check N (CPU only, instead of the timing table): the engine against the
straightforward per-prefix solver (solve_first_spike_times_reference, the tests' oracle,
float64) on N samples of every shape and dtype, whole network, forward and backward of the
sum of the finite output times: spike/no-spike disagreements, the largest difference of
the spike times both give (tau_s), the largest weight-gradient difference relative to the
layer's largest reference gradient, and the oracle's speed (samples per CPU-s).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pynn_ttfs.engine import cpu_kernels, feedforward, layer_parameters, with_bias  # noqa: E402
from pynn_ttfs.engine.first_spike import (  # noqa: E402
    first_spike_gradients_reference,
    solve_first_spike_times_reference,
)

T_EARLY, T_LATE, BIAS_TIME = 0.15, 2.0, 0.9
#: shape -> (input kind, per-layer init (mean, std), bias spikes per layer)
SHAPES = {
    "5-120-3": ("yinyang", [(1.5, 0.8), (0.5, 0.8)], [[], [BIAS_TIME]]),
    "256-246-10": ("mnist16", [(0.1, 0.4), (0.6, 0.8)], [[], []]),
    "784-350-10": ("mnist", [(0.05, 0.8), (0.15, 0.8)], [[], []]),
}
MIN_SECONDS = 0.6
#: --cpu-forward-loops choice -> the layer width from which the all-neurons loop is taken
FORWARD_LOOP_MIN_WIDTH = {"auto": cpu_kernels.WIDE_LAYER_MIN, "per-neuron": 10 ** 9, "wide": 1}


def _mnist_images(data_dir, count, small):
    """Brightness in [0, 1], (count, 784 or 256); None when no IDX files are found."""
    try:
        from pynn_ttfs.training.datasets import load_mnist
        dataset = load_mnist(data_dir, small=small, sizes={"train": count, "val": 1, "test": 1})
    except (FileNotFoundError, ImportError, OSError):
        here = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
        if data_dir is None and here.is_dir():
            return _mnist_images(here, count, small)
        return None
    return 1.0 - dataset.train.values[:count]


def _synthetic_images(count, n, seed=0):
    rng = np.random.RandomState(seed)
    brightness = np.zeros((count, n))
    lit = rng.rand(count, n) < 0.2
    level = np.where(rng.rand(count, n) < 0.5, 1.0, rng.rand(count, n))
    brightness[lit] = level[lit]
    return brightness


def make_inputs(kind, batch, data_dir, seed=0):
    """(times (batch, n_in) float64, source name)."""
    if kind == "yinyang":
        rng = np.random.RandomState(seed)
        xy = rng.rand(batch, 2)
        values = np.concatenate([xy, 1.0 - xy], axis=1)
        times = T_EARLY + values * (T_LATE - T_EARLY)
        times = np.concatenate([times, np.full((batch, 1), BIAS_TIME)], axis=1)
        return torch.tensor(times), "yinyang"
    small = kind == "mnist16"
    n = 256 if small else 784
    brightness = _mnist_images(data_dir, batch, small)
    source = "mnist"
    if brightness is None:
        brightness, source = _synthetic_images(batch, n, seed), "synthetic"
    elif len(brightness) < batch:  # batches beyond the 50000 training images repeat them
        brightness = np.resize(brightness, (batch, n))
    times = T_EARLY + (1.0 - brightness) * (T_LATE - T_EARLY)
    if small:
        times = np.where(brightness <= 0.0, np.inf, times)
    return torch.tensor(times), source


def make_layers(shape, init, biases, dtype, device, seed=0):
    sizes = [int(s) for s in shape.split("-")]
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for (n_in, n_out), (mean, std), bias in zip(zip(sizes[:-1], sizes[1:]), init, biases):
        rows = n_in + len(bias) if layers else n_in  # the input layer's bias is in n_in
        w = torch.randn(rows, n_out, generator=generator, dtype=torch.float64) * std + mean
        layers.append({"weights": w.to(dtype=dtype, device=device)})
    return layers


class _PeakRSS:
    """Peak resident set size (bytes) while active, sampled by a thread."""

    def __init__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = self.base = self.now()
        self._stop = threading.Event()

    def now(self):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.0005)

    def __enter__(self):
        self.base = self.peak = self.now()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def run_once(x, layers, biases, mode):
    if mode == "forward":
        with torch.no_grad():
            return feedforward(x, layers, bias_times=biases)
    weights = [layer["weights"].requires_grad_() for layer in layers]
    outputs = feedforward(x, layers, bias_times=biases)
    last = outputs[-1]
    loss = torch.where(torch.isfinite(last), last, torch.zeros_like(last)).sum()
    loss.backward()
    for w in weights:
        w.grad = None
        w.requires_grad_(False)
    return outputs


def measure(shape, batch, dtype, device, mode, data_dir, quick):
    kind, init, biases = SHAPES[shape]
    x, source = make_inputs(kind, batch, data_dir)
    x = x.to(dtype=dtype, device=device)
    layers = make_layers(shape, init, biases, dtype, device)
    bias_times = biases if any(biases) else None
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    # the first run (warm-up) also gives the peak memory
    if device == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        outputs = run_once(x, layers, bias_times, mode)
        sync()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        with _PeakRSS() as rss:
            outputs = run_once(x, layers, bias_times, mode)
        peak = rss.peak - rss.base
    spiking = [float(torch.isfinite(o).float().mean()) for o in outputs]
    reps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        run_once(x, layers, bias_times, mode)
        sync()
        reps += 1
        elapsed = time.perf_counter() - start
        if quick or elapsed >= MIN_SECONDS:
            break
    cpu = time.process_time() - cpu_start
    record = {
        "shape": shape, "batch": batch, "dtype": str(dtype).replace("torch.", ""),
        "device": device, "mode": mode, "samples_per_s": batch * reps / elapsed,
        "samples_per_cpu_s": batch * reps / max(cpu, 1e-9),
        "peak_memory_mb": max(0, peak) / 2 ** 20,
    }
    return record, source, spiking, record["samples_per_cpu_s"]


def reference_check(shape, samples, dtype, data_dir):
    """The engine (``dtype``, CPU) against the per-prefix oracle (float64), whole network."""
    kind, init, biases = SHAPES[shape]
    x, source = make_inputs(kind, samples, data_dir)
    layers = make_layers(shape, init, biases, dtype, "cpu")
    weights = [layer["weights"].clone().requires_grad_() for layer in layers]
    outputs = feedforward(x.to(dtype), [{"weights": w} for w in weights],
                          bias_times=biases if any(biases) else None)
    last = outputs[-1]
    torch.where(torch.isfinite(last), last, torch.zeros_like(last)).sum().backward()

    cpu_start = time.process_time()
    reference_inputs, reference_outputs, parameters = [], [], []
    current = x.double()
    for layer, bias in zip(layers, biases):
        w = layer["weights"].double()
        reference_inputs.append(with_bias(current, bias))
        parameters.append(layer_parameters(1.0, 1.0, 1.0, w.shape[1], w))
        current = solve_first_spike_times_reference(reference_inputs[-1], w, parameters[-1])
        reference_outputs.append(current)
    grad_output = torch.isfinite(current).double()  # d(sum of finite times) / d(times)
    reference_grads = [None] * len(layers)
    for index in reversed(range(len(layers))):
        grad_input, reference_grads[index] = first_spike_gradients_reference(
            reference_inputs[index], layers[index]["weights"].double(),
            reference_outputs[index], parameters[index], grad_output,
            need_input_grad=index > 0)
        if index > 0:  # the bias columns are not the previous layer's outputs
            grad_output = grad_input[:, :reference_outputs[index - 1].shape[1]]
    oracle_cpu = time.process_time() - cpu_start

    disagreements, time_error, gradient_error = 0, 0.0, 0.0
    for fast, exact, w, exact_grad in zip(outputs, reference_outputs, weights, reference_grads):
        fast = fast.detach().double()
        disagreements += int((torch.isfinite(fast) != torch.isfinite(exact)).sum())
        both = torch.isfinite(fast) & torch.isfinite(exact)
        if both.any():
            time_error = max(time_error, float((fast[both] - exact[both]).abs().max()))
        scale = float(exact_grad.abs().max())
        if scale > 0:
            gradient_error = max(gradient_error,
                                 float((w.grad.double() - exact_grad).abs().max()) / scale)
    return {"shape": shape, "samples": samples, "dtype": str(dtype).replace("torch.", ""),
            "device": "cpu", "mode": "reference_check", "spike_disagreements": disagreements,
            "outputs_compared": sum(o.numel() for o in outputs),
            "max_time_difference_tau_s": time_error,
            "max_relative_weight_gradient_difference": gradient_error,
            "oracle_samples_per_cpu_s": samples / max(oracle_cpu, 1e-9)}, source


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="write the records as a JSON list")
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 100, float32, one repetition")
    parser.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--devices", nargs="*", default=None, choices=["cpu", "cuda"])
    parser.add_argument("--batches", nargs="*", type=int, default=None,
                        help="batch sizes (default 100 1000; a GPU fills at 10^4-10^5)")
    parser.add_argument("--dtypes", nargs="*", default=None, choices=["float32", "float64"])
    parser.add_argument("--cpu-forward-loops", nargs="*", default=["auto"],
                        choices=list(FORWARD_LOOP_MIN_WIDTH),
                        help="which compiled CPU forward loop every layer takes (default auto: "
                             f"the all-neurons loop from {cpu_kernels.WIDE_LAYER_MIN} neurons)")
    parser.add_argument("--reference-check", type=int, default=0, metavar="N",
                        help="instead of timing: compare with the per-prefix oracle on N samples")
    args = parser.parse_args(argv)
    if args.reference_check < 0:
        parser.error(f"--reference-check must be >= 0 samples, got {args.reference_check}")
    if any(loop != "auto" for loop in args.cpu_forward_loops) and not cpu_kernels.AVAILABLE:
        parser.error("--cpu-forward-loops needs the compiled loops (numba installed, "
                     "PYNN_TTFS_NUMBA not 0)")
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    batches = args.batches or ([100] if args.quick else [100, 1000])
    dtypes = ([getattr(torch, name) for name in args.dtypes] if args.dtypes else
              [torch.float32] if args.quick else [torch.float32, torch.float64])
    if args.reference_check:
        return _reference_table(args, dtypes)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if "cuda" in devices else ""))
    header = f"{'shape':>11} {'batch':>5} {'dtype':>7} {'device':>6} {'loop':>10} {'mode':>16} {'samples/s':>11} {'per CPU-s':>11} {'peak MB':>8}  spiking (hidden, out)  inputs"
    print(header)
    print("-" * len(header))
    records = []
    for device in devices:
        # the loops are CPU code: on CUDA only the default
        loops = args.cpu_forward_loops if device == "cpu" else ["auto"]
        for shape in args.shapes:
            for dtype in dtypes:
                for batch in batches:
                    for loop in loops:
                        for mode in ("forward", "forward_backward"):
                            cpu_kernels.WIDE_LAYER_MIN = FORWARD_LOOP_MIN_WIDTH[loop]
                            try:
                                record, source, spiking, per_cpu = measure(
                                    shape, batch, dtype, device, mode, args.data_dir, args.quick)
                            finally:
                                cpu_kernels.WIDE_LAYER_MIN = FORWARD_LOOP_MIN_WIDTH["auto"]
                            record["loop"] = loop if device == "cpu" else None
                            records.append(record)
                            print(f"{shape:>11} {batch:>5} {record['dtype']:>7} {device:>6} "
                                  f"{loop if device == 'cpu' else '-':>10} {mode:>16} "
                                  f"{record['samples_per_s']:>11,.0f} {per_cpu:>11,.0f} "
                                  f"{record['peak_memory_mb']:>8.1f}  "
                                  f"{spiking[0]:.2f}, {spiking[-1]:.2f}            {source}", flush=True)
    _write_records(args.json, records)
    return records


def _write_records(path, records):
    if path:
        Path(path).write_text(json.dumps(records, indent=1))
        print(f"wrote {len(records)} records to {path}")


def _reference_table(args, dtypes):
    header = (f"{'shape':>11} {'samples':>7} {'dtype':>7} {'disagree':>8} {'max |dt| tau_s':>15} "
              f"{'max grad diff':>13} {'oracle samples/CPU-s':>20}  inputs")
    print(header)
    print("-" * len(header))
    records = []
    for shape in args.shapes:
        for dtype in dtypes:
            record, source = reference_check(shape, args.reference_check, dtype, args.data_dir)
            records.append(record)
            print(f"{shape:>11} {record['samples']:>7} {record['dtype']:>7} "
                  f"{record['spike_disagreements']:>8} {record['max_time_difference_tau_s']:>15.2e} "
                  f"{record['max_relative_weight_gradient_difference']:>13.2e} "
                  f"{record['oracle_samples_per_cpu_s']:>20.1f}  {source}", flush=True)
    _write_records(args.json, records)
    return records


if __name__ == "__main__":
    main()

"""benchmarks/engine.py runs every CPU forward loop it is asked for, and leaves the engine's
choice of loop as it found it."""
import pytest

from _benchmark_scripts import load_benchmark
from pynn_ttfs.engine import cpu_kernels


@pytest.fixture(scope="module")
def engine_benchmark():
    return load_benchmark("engine")


@pytest.mark.skipif(not cpu_kernels.AVAILABLE, reason="the compiled loops are switched off")
def test_forced_forward_loops_are_the_ones_that_run(engine_benchmark, monkeypatch):
    widths_seen = []  # WIDE_LAYER_MIN while the engine searched a layer's crossings
    original = cpu_kernels.crossing_intervals

    def spy(*args, **kwargs):
        widths_seen.append(cpu_kernels.WIDE_LAYER_MIN)
        return original(*args, **kwargs)

    monkeypatch.setattr(cpu_kernels, "crossing_intervals", spy)
    default = cpu_kernels.WIDE_LAYER_MIN
    records = engine_benchmark.main(["--quick", "--shapes", "5-120-3", "--devices", "cpu",
                                     "--cpu-forward-loops", "per-neuron", "wide", "auto"])
    assert [(r["loop"], r["mode"]) for r in records] == [
        (loop, mode) for loop in ("per-neuron", "wide", "auto")
        for mode in ("forward", "forward_backward")]
    assert set(widths_seen) == {10 ** 9, 1, default}
    assert cpu_kernels.WIDE_LAYER_MIN == default
    assert all(r["samples_per_s"] > 0 for r in records)


def test_reference_check_compares_the_whole_network_forward_and_backward(engine_benchmark):
    exact, _ = engine_benchmark.reference_check("5-120-3", 4, engine_benchmark.torch.float64, None)
    assert exact["outputs_compared"] == 4 * (120 + 3)
    assert exact["spike_disagreements"] == 0
    assert exact["max_time_difference_tau_s"] < 1e-12
    assert exact["max_relative_weight_gradient_difference"] < 1e-12
    single, _ = engine_benchmark.reference_check("5-120-3", 4, engine_benchmark.torch.float32, None)
    # float32 is compared with the float64 oracle: rounding shows, but only rounding
    assert 0 < single["max_time_difference_tau_s"] < 1e-4
    assert single["max_relative_weight_gradient_difference"] < 1e-4

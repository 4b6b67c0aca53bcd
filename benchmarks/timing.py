"""Correct timing for pytest-benchmark on GPU and CPU: synchronise inside the timed call, rotate inputs."""

from __future__ import annotations

import itertools
import platform
from collections.abc import Callable, Sequence
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_pedantic(benchmark: Any, call: Callable[[Any], Any], inputs: Sequence[Any], device: torch.device,
                 rounds: int, warmup: int) -> None:
    """Time ``call(input)`` with pytest-benchmark: warm-up untimed, inputs rotated, device work included."""
    rotation = itertools.cycle(inputs)

    def setup():
        synchronize(device)
        return (next(rotation),), {}

    def timed(item):
        result = call(item)
        synchronize(device)
        return result

    benchmark.pedantic(timed, setup=setup, rounds=rounds, warmup_rounds=warmup, iterations=1)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's (``cpu_name``)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's guess elsewhere): every result file records it."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_ceilings(device: torch.device) -> dict[str, float]:
    """Copy bandwidth (bytes read + written per second) and matmul rate (FLOP/s) of this device, measured."""
    import time

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    elements = (256 << 20) // 2 if device.type == "cuda" else (64 << 20) // 4
    size = 8192 if device.type == "cuda" else 2048
    source = torch.randn(elements, device=device, dtype=dtype)
    target = torch.empty_like(source)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)

    def best_of(function: Callable[[], Any], repeats: int) -> float:
        """The fastest of ``repeats`` runs: a ceiling is what the device can do, not what it usually does."""
        function()
        synchronize(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            synchronize(device)
            times.append(time.perf_counter() - start)
        return min(times)

    copy_seconds = best_of(lambda: target.copy_(source), 10)
    matmul_seconds = best_of(lambda: a @ b, 10)
    return {
        "bandwidth_bytes_per_s": 2 * source.numel() * source.element_size() / copy_seconds,
        "matmul_flops_per_s": 2 * size**3 / matmul_seconds,
        "matmul_dtype": str(dtype).removeprefix("torch."),
    }

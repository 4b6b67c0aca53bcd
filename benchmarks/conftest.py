"""Benchmark session set-up: the device, its measured ceilings, and the metadata every result carries."""

from __future__ import annotations

import platform

import pytest
import torch

from benchmarks.timing import measure_ceilings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device")


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="session")
def ceilings(device: torch.device) -> dict[str, float]:
    return measure_ceilings(device)


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pytest_benchmark_update_machine_info(config, machine_info):  # noqa: ARG001  (pytest-benchmark hook)
    import timm
    import triton

    machine_info["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else _cpu_name()
    machine_info["torch"] = torch.__version__
    machine_info["triton"] = triton.__version__
    machine_info["timm"] = timm.__version__
    machine_info["cpu_threads"] = torch.get_num_threads()

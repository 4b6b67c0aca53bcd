"""Benchmark session set-up: the device, its measured ceilings, and the metadata every result carries."""

from __future__ import annotations

import pytest
import torch

from benchmarks.timing import device_name, measure_ceilings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device")


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="session")
def ceilings(device: torch.device) -> dict[str, float]:
    return measure_ceilings(device)


def pytest_benchmark_update_machine_info(config, machine_info):  # noqa: ARG001  (pytest-benchmark hook)
    import timm
    import triton

    machine_info["device"] = device_name(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    machine_info["torch"] = torch.__version__
    machine_info["triton"] = triton.__version__
    machine_info["timm"] = timm.__version__
    machine_info["cpu_threads"] = torch.get_num_threads()

"""Shared fixtures: seeded randomness, no global state leaked between tests, random adapter weights."""

from __future__ import annotations

import logging
import os
from pathlib import Path

# Idle OpenMP threads sleep after 1000 spins instead of ~300,000: two test runs (or a run next to the demo) on a
# 2-core machine otherwise slow each other down many times over (docs/demo.md). Read when torch loads libgomp.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
# Under pytest-xdist the workers already fill the cores: one thread per torch (the commands tests start inherit it),
# else `make test`'s two workers run four threads on two cores, ~35% more CPU time. Tests of threading set their
# counts themselves, and the AddressSanitizer run (tests/test_address_sanitizer.py) sets two.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
# Deterministic cuBLAS, which the op requires in deterministic mode on a GPU (fekernels/_precision.py); read when
# cuBLAS starts, so before any test touches CUDA.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402

if not torch.cuda.is_available():
    # Run the Triton kernels through the CPU interpreter; must happen before any kernel is defined.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

if os.environ.get("TRITON_INTERPRET") == "1":
    from tests.triton_interpreter import skip_repatching_inside_launches

    skip_repatching_inside_launches()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _determinism_switches() -> tuple[bool, bool, bool]:
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.benchmark)


def _own_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The logger's handlers less pytest's per-phase capture handlers (they differ between setup and teardown)."""
    from _pytest.logging import LogCaptureHandler

    return [handler for handler in logger.handlers if not isinstance(handler, LogCaptureHandler)]


@pytest.fixture(autouse=True)
def _no_leaked_global_state():
    """Every test leaves the process as it found it: torch's determinism switches (a test that changes them
    fails) and the root logger's handlers and level (put back, and leaked handlers closed, so that no test
    logs into another test's folder)."""
    switches = _determinism_switches()
    root = logging.getLogger()
    handlers, level = _own_handlers(root), root.level
    yield
    leaked = _determinism_switches()
    torch.use_deterministic_algorithms(switches[0], warn_only=switches[1])
    torch.backends.cudnn.benchmark = switches[2]
    for handler in _own_handlers(root):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    assert leaked == switches, (f"the test left torch's (deterministic algorithms, warn only, cudnn.benchmark) "
                                f"at {leaked}, found at {switches}")


def random_adapter_tensors(
    dim: int,
    bottleneck: int,
    kernel_size: int,
    dtype: torch.dtype = torch.float64,
    biases: bool = True,
) -> dict[str, torch.Tensor | None]:
    """Fresh random weights for the op, scaled so activations stay O(1)."""

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, dtype=torch.float64) * scale).to(dtype)

    return {
        "w_down": rand(bottleneck, dim, scale=dim**-0.5),
        "b_down": rand(bottleneck, scale=0.1) if biases else None,
        "w_conv": rand(bottleneck, kernel_size, scale=kernel_size**-0.5),
        "b_conv": rand(bottleneck, scale=0.1) if biases else None,
        "w_up": rand(dim, bottleneck, scale=bottleneck**-0.5),
        "b_up": rand(dim, scale=0.1) if biases else None,
    }


def train_steps(model: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor, steps: int,
                lr: float = 1e-2) -> list[float]:
    """Run ``steps`` AdamW steps on the trainable parameters; return the loss of each step."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory) -> tuple[Path, Path]:
    """(adapter checkpoint, backbone weights file) of a tiny 3-class, 4-frame model with random trained weights."""
    from tests.tiny_model import write_tiny_model_files

    return write_tiny_model_files(tmp_path_factory.mktemp("tiny_model"))

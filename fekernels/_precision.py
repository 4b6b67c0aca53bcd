"""PyTorch's numerical settings that decide what runs: TF32 for fp32 products, and deterministic mode's need for a
fixed cuBLAS workspace. Plain Python (no Triton import), shared by the op's routing and the Triton launchers."""

from __future__ import annotations

import os
import warnings

import torch


def _constant_when_compiled(fn):
    """``torch.compiler.assume_constant_result`` without its import of torch._dynamo (which imports Triton:
    ``import fekernels`` must not). It only sets this attribute; tests/test_launch.py checks that it still does."""
    fn._dynamo_marked_constant = True
    return fn


#: The values of CUBLAS_WORKSPACE_CONFIG under which cuBLAS is deterministic (NVIDIA's cuBLAS docs, and what
#: PyTorch's deterministic mode checks for).
DETERMINISTIC_CUBLAS_WORKSPACES = (":4096:8", ":16:8")


@_constant_when_compiled
def tf32_allowed() -> bool:
    """Whether fp32 matmuls may use TF32, under either of PyTorch's APIs (reading the legacy flag raises once the
    newer ``fp32_precision`` setting is in use). torch.compile reads it once, while tracing (its getter cannot be
    traced): a compiled model keeps the routing of the setting it was compiled under."""
    matmul = torch.backends.cuda.matmul
    precision = getattr(matmul, "fp32_precision", None)
    if precision is None:
        return matmul.allow_tf32
    if precision == "none":
        precision = getattr(torch.backends, "fp32_precision", "ieee")
    return precision == "tf32"


@_constant_when_compiled
def _cublas_workspace_problem() -> str:
    """What is wrong with CUBLAS_WORKSPACE_CONFIG for deterministic cuBLAS ("" when nothing is)."""
    value = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if value in DETERMINISTIC_CUBLAS_WORKSPACES:
        return ""
    return (f"deterministic mode (torch.use_deterministic_algorithms(True)) on CUDA needs the environment variable "
            f"CUBLAS_WORKSPACE_CONFIG={DETERMINISTIC_CUBLAS_WORKSPACES[0]} or {DETERMINISTIC_CUBLAS_WORKSPACES[1]} "
            f"set before the process starts (it is {'unset' if value is None else repr(value)}): the op's cuBLAS "
            "GEMMs are not deterministic without it")


def require_deterministic_cublas(device: torch.device) -> None:
    """With PyTorch's deterministic algorithms on and a CUDA device, make sure cuBLAS is deterministic too: both
    implementations run cuBLAS GEMMs, which are not unless CUBLAS_WORKSPACE_CONFIG is set before the process
    starts. Raises a RuntimeError naming the variable (a warning in warn-only mode), before anything runs."""
    if device.type != "cuda" or not torch.are_deterministic_algorithms_enabled():
        return
    if problem := _cublas_workspace_problem():
        if torch.is_deterministic_algorithms_warn_only_enabled():
            warnings.warn(problem, stacklevel=3)
        else:
            raise RuntimeError(problem)

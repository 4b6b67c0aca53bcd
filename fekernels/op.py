"""The public FE-Adapter op: validate the arguments, pick an implementation, run it."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch

from fekernels import native
from fekernels._checks import check_choice, check_fe_adapter_inputs
from fekernels._precision import require_deterministic_cublas, tf32_allowed
from fekernels.reference import fe_adapter_reference


def _triton_installed() -> bool:
    """Whether Triton is installed, found without importing it: its import (about a second, and its GPU driver
    set-up) waits until a kernel is called."""
    return importlib.util.find_spec("triton") is not None


def _fe_adapter_triton(*args, **kwargs) -> torch.Tensor:
    """The Triton kernels; their module (Triton, the kernels, the custom ops) is imported on the first call."""
    try:
        from fekernels.triton_kernels import fe_adapter_triton
    except ImportError as error:  # installed, yet broken (e.g. built for another torch)
        raise ImportError(f"impl='triton': Triton is installed but does not import ({error}); use impl='torch'") \
            from error
    return fe_adapter_triton(*args, **kwargs)


#: Implementations by name; "auto" picks among them.
_IMPLEMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {"torch": fe_adapter_reference}
if _triton_installed():  # no Triton on this platform: the reference still works everywhere
    _IMPLEMENTATIONS["triton"] = _fe_adapter_triton
if native.AVAILABLE:
    _IMPLEMENTATIONS["native"] = native.fe_adapter_native

IMPLS: tuple[str, ...] = ("auto", *_IMPLEMENTATIONS)

#: The dtypes of CUDA tensors for which ``impl="auto"`` takes the Triton kernels. A dtype joins only when a
#: committed GPU benchmark run (benchmarks/results/, docs/performance.md) shows the kernels faster than the
#: reference on every shape of the benchmark grid, so that auto never picks a slower path. The GEMM-shaped
#: kernels have not been timed on a GPU yet: until they are, auto keeps the reference on CUDA.
TRITON_MEASURED_FASTER: frozenset[torch.dtype] = frozenset()


#: fp32 without TF32 runs the reference (cuBLAS's IEEE fp32 GEMMs) even for impl="triton": the kernels' IEEE path
#: compiles to scalar FMAs (benchmarks/results/offline-compile-sm90a.md), surely slower, and the op must never be
#: slower than the reference. Only the tests turn this off (``fekernels.testing.ieee_fp32_on_the_kernels``), so
#: that the interpreter's fp32 cases still run the kernels.
ROUTE_IEEE_FP32_TO_REFERENCE = True


def choose_impl(impl: str, device_type: str, dtype: torch.dtype, tf32: bool) -> str:
    """The implementation ``impl`` stands for on tensors of ``dtype`` on ``device_type``, with TF32 allowed for fp32
    matmuls or not (``resolve_impl`` reads it from PyTorch's settings; this is the decision itself)."""
    check_choice("impl", impl, IMPLS)
    ieee_fp32_routed = dtype == torch.float32 and not tf32 and ROUTE_IEEE_FP32_TO_REFERENCE
    if impl == "triton" and ieee_fp32_routed:
        return "torch"
    if impl != "auto":
        return impl
    if (device_type == "cuda" and "triton" in _IMPLEMENTATIONS and dtype in TRITON_MEASURED_FASTER
            and not ieee_fp32_routed):
        return "triton"
    if device_type == "cpu" and "native" in _IMPLEMENTATIONS and dtype in native.DTYPES:
        return "native"
    return "torch"


def resolve_impl(impl: str, x: torch.Tensor) -> str:
    """The concrete implementation ``impl`` stands for when applied to ``x`` under PyTorch's current settings."""
    return choose_impl(impl, x.device.type, x.dtype, tf32_allowed())


def _autocast(*tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Under autocast, run in the autocast dtype like F.linear would (e.g. fp32 adapters on a bf16 stream)."""
    dtype = torch.get_autocast_dtype(tensors[0].device.type)
    return [t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in tensors]


def fe_adapter(
    x: torch.Tensor,
    w_down: torch.Tensor,
    b_down: torch.Tensor | None,
    w_conv: torch.Tensor,
    b_conv: torch.Tensor | None,
    w_up: torch.Tensor,
    b_up: torch.Tensor | None,
    *,
    num_frames: int,
    dilation: int = 1,
    activation: str | None = None,
    num_prefix_tokens: int = 0,
    impl: str = "auto",
) -> torch.Tensor:
    """FE-Adapter: a bottleneck adapter with a temporal depthwise convolution, on the residual stream.

    Args:
        x: (B*T, N, C) tokens, the T frames of each clip consecutive along dim 0.
        w_down: (R, C) down-projection; b_down: (R,) or None.
        w_conv: (R, K) depthwise temporal kernel, K odd; b_conv: (R,) or None.
        w_up: (C, R) up-projection; b_up: (C,) or None.
        num_frames: T, the frames per clip.
        dilation: temporal dilation d >= 1; tap k reads frame ``t + (k - K//2) * d``, zero outside the clip.
        activation: None, "gelu" (exact), "silu" or "relu", applied after the convolution.
        num_prefix_tokens: P leading tokens per frame (cls, distillation, registers) returned unchanged.
        impl: "auto" (the native C++ kernel for fp32/bf16 CPU tensors when it is built; the Triton kernels
            for CUDA tensors of the dtypes in ``TRITON_MEASURED_FASTER``, none yet; the reference otherwise),
            "torch" (the reference), "triton" (CUDA, or on CPU under the Triton interpreter,
            TRITON_INTERPRET=1; fp32 with TF32 not allowed runs the reference, whose cuBLAS fp32 GEMMs the
            kernels' IEEE path cannot beat) or "native".

    Under ``torch.autocast`` all tensors are cast to the autocast dtype first, so fp32 adapters work on a
    bf16 residual stream; gradients flow back to the fp32 weights through the cast.

    Returns:
        A tensor like ``x``: prefix tokens copied, every other token ``x + act(conv(x Wd^T + bd)) Wu^T + bu``.

    Raises:
        TypeError: an argument of the wrong kind (not a tensor, not an int, not a float dtype).
        ValueError: inconsistent shapes, even K, out-of-range values, dtype or device mismatches,
            unknown activation or impl.
        RuntimeError: deterministic mode on CUDA without CUBLAS_WORKSPACE_CONFIG=:4096:8 or :16:8.
    """
    if isinstance(x, torch.Tensor) and torch.is_autocast_enabled(x.device.type):
        x, w_down, b_down, w_conv, b_conv, w_up, b_up = _autocast(x, w_down, b_down, w_conv, b_conv, w_up, b_up)
    check_fe_adapter_inputs(
        x, w_down, b_down, w_conv, b_conv, w_up, b_up,
        num_frames=num_frames, dilation=dilation, activation=activation, num_prefix_tokens=num_prefix_tokens,
    )
    run = _IMPLEMENTATIONS[resolve_impl(impl, x)]
    require_deterministic_cublas(x.device)
    return run(
        x, w_down, b_down, w_conv, b_conv, w_up, b_up,
        num_frames=num_frames, dilation=dilation, activation=activation, num_prefix_tokens=num_prefix_tokens,
    )

"""Launchers for the fused Triton kernels: buffers, grids, configs, and the weight-gradient reductions."""

from __future__ import annotations

import contextlib
import os

import torch
import triton
import triton.language as tl

from fekernels._activations import ACTIVATION_CODES
from fekernels.triton_kernels import kernels

_TRITON_DTYPES = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16}
_SMALLEST_BLOCK_M = 16

#: Tests set this to fill every buffer a kernel writes with NaN first, so that an unwritten element shows.
POISON_OUTPUTS = False


def _empty(shape: tuple[int, ...], like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    buffer = torch.empty(shape, dtype=dtype or like.dtype, device=like.device)
    return buffer.fill_(float("nan")) if POISON_OUTPUTS else buffer


def interpreted() -> bool:
    """True when Triton runs kernels through its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


#: (BLOCK_M, BLOCK_R, BLOCK_C, num_warps) tried on a GPU. The backward holds more live tiles; its list
#: leaves out the shapes that spilled registers when compiled for sm_90 with Triton 3.6 (ptxas -v).
_FORWARD_TILES = [(16, 64, 64, 4), (32, 64, 64, 4), (32, 128, 64, 4), (64, 64, 64, 4), (64, 128, 64, 8),
                  (64, 64, 128, 8)]
_BACKWARD_TILES = [(16, 64, 64, 4), (32, 64, 64, 4), (32, 64, 128, 8), (64, 64, 128, 8)]


def _configs(tiles: list[tuple[int, int, int, int]]) -> list[triton.Config]:
    if interpreted():  # autotuning needs a GPU driver; large blocks keep the interpreter fast
        return [triton.Config({"BLOCK_M": 64, "BLOCK_R": 64, "BLOCK_C": 128})]
    return [
        triton.Config({"BLOCK_M": block_m, "BLOCK_R": block_r, "BLOCK_C": block_c}, num_warps=warps, num_stages=2)
        for block_m, block_r, block_c, warps in tiles
    ]


_KEY = ["N", "C", "R", "T", "K", "ACTIVATION"]
_forward = triton.autotune(_configs(_FORWARD_TILES), key=_KEY)(kernels.fe_adapter_forward_kernel)
_backward = triton.autotune(_configs(_BACKWARD_TILES), key=[*_KEY, "NEED_DX", "NEED_DZ", "NEED_WEIGHT_GRADS"],
                            reset_to_zero=["DWC_PART", "DBC_PART"])(kernels.fe_adapter_backward_kernel)


def _grid(num_clips: int, num_tokens: int):
    return lambda meta: (num_clips, triton.cdiv(num_tokens, meta["BLOCK_M"]))


def _tf32_allowed() -> bool:
    """Whether fp32 matmuls may use TF32, under either of PyTorch's APIs (reading the legacy flag raises
    once the newer ``fp32_precision`` setting is in use)."""
    precision = getattr(torch.backends.cuda.matmul, "fp32_precision", None)
    if precision is None:
        return torch.backends.cuda.matmul.allow_tf32
    if precision == "none":
        precision = getattr(torch.backends, "fp32_precision", "ieee")
    return precision == "tf32"


def _precision_flags(dtype: torch.dtype) -> dict[str, bool]:
    upcast = interpreted()
    ieee = upcast or (dtype == torch.float32 and not _tf32_allowed())
    return {"UPCAST": upcast, "IEEE": ieee}


def _check_supported(x: torch.Tensor) -> None:
    if x.dtype not in _TRITON_DTYPES:
        raise ValueError(f"impl='triton' supports float32, float16 and bfloat16, got x.dtype = {x.dtype}")
    if x.device.type != "cuda" and not interpreted():
        raise ValueError(
            f"impl='triton' needs CUDA tensors (x is on {x.device}); on CPU it runs only under the Triton "
            "interpreter (set TRITON_INTERPRET=1 before importing fekernels)"
        )


def forward(
    x: torch.Tensor, w_down: torch.Tensor, b_down: torch.Tensor | None, w_conv: torch.Tensor,
    b_conv: torch.Tensor | None, w_up: torch.Tensor, b_up: torch.Tensor | None,
    num_frames: int, dilation: int, activation: str | None, num_prefix_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the fused forward. Returns ``out`` (like x) and ``z`` ((B*T, N, R), zero on prefix rows)."""
    _check_supported(x)
    x = x.contiguous()
    frames_total, num_tokens, dim = x.shape
    bottleneck, kernel_size = w_conv.shape
    num_clips = frames_total // num_frames
    out = _empty(x.shape, x)
    z = _empty((frames_total, num_tokens, bottleneck), x)
    scratch = _empty((num_clips, num_tokens, bottleneck), x)
    with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
        _forward[_grid(num_clips, num_tokens)](
            x, w_down.contiguous(), _or(b_down, w_down), w_conv.contiguous(), _or(b_conv, w_conv),
            w_up.contiguous(), _or(b_up, w_up), out, z, scratch,
            num_tokens, dim, bottleneck, num_frames, num_prefix_tokens, dilation,
            HAS_BD=b_down is not None, HAS_BC=b_conv is not None, HAS_BU=b_up is not None,
            K=kernel_size, ACTIVATION=ACTIVATION_CODES[activation], DTYPE=_TRITON_DTYPES[x.dtype],
            **_precision_flags(x.dtype),
        )
    return out, z


def backward(
    grad_out: torch.Tensor, x: torch.Tensor, z: torch.Tensor, w_down: torch.Tensor, w_conv: torch.Tensor,
    b_conv: torch.Tensor | None, w_up: torch.Tensor,
    num_frames: int, dilation: int, activation: str | None, num_prefix_tokens: int,
    need_x: bool, need_down: bool, need_weights: bool,
) -> tuple[torch.Tensor | None, ...]:
    """Gradients (dx, dw_down, db_down, dw_conv, db_conv, dw_up, db_up); None where not needed.

    ``need_down``: gradients of w_down/b_down are wanted; ``need_weights``: of the conv and up-projection.
    The weight gradients are deterministic: fp32 per-program partials summed afterwards for the conv,
    library GEMMs over all tokens for the projections.
    """
    grad_out = grad_out.contiguous()
    x = x.contiguous()
    frames_total, num_tokens, dim = x.shape
    bottleneck, kernel_size = w_conv.shape
    num_clips = frames_total // num_frames
    need_dz = need_x or need_down
    empty = x.new_empty(0)
    dx = _empty(x.shape, x) if need_x else empty
    a = _empty(z.shape, x) if need_weights else empty
    dh = _empty(z.shape, x, torch.float32) if need_dz else empty
    dz = _empty(z.shape, x) if need_dz else empty
    # one slot per (program, frame): every program writes its own slots, summed afterwards (deterministic)
    slots = num_clips * triton.cdiv(num_tokens, _SMALLEST_BLOCK_M) * num_frames if need_weights else 0
    dwc_part = torch.zeros(slots, bottleneck, kernel_size, dtype=torch.float32, device=x.device)
    dbc_part = torch.zeros(slots, bottleneck, dtype=torch.float32, device=x.device)
    with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
        _backward[_grid(num_clips, num_tokens)](
            grad_out, z, w_down.contiguous(), w_conv.contiguous(), _or(b_conv, w_conv), w_up.contiguous(),
            dx, a, dh, dz, dwc_part, dbc_part,
            num_tokens, dim, bottleneck, num_frames, num_prefix_tokens, dilation,
            HAS_BC=b_conv is not None, K=kernel_size, K_PAD=triton.next_power_of_2(kernel_size),
            ACTIVATION=ACTIVATION_CODES[activation], DTYPE=_TRITON_DTYPES[x.dtype],
            NEED_DX=need_x, NEED_DZ=need_dz, NEED_WEIGHT_GRADS=need_weights,
            **_precision_flags(x.dtype),
        )

    grads: dict[str, torch.Tensor | None] = dict.fromkeys(
        ("dx", "dw_down", "db_down", "dw_conv", "db_conv", "dw_up", "db_up")
    )
    if need_x:
        grads["dx"] = dx
    rows_out = grad_out.reshape(-1, dim)
    if need_down:
        rows_dz = dz.reshape(-1, bottleneck)
        grads["dw_down"] = rows_dz.t() @ x.reshape(-1, dim)
        grads["db_down"] = rows_dz.sum(0, dtype=torch.float32).to(x.dtype)
    if need_weights:
        grads["dw_conv"] = dwc_part.sum(0).to(x.dtype)
        grads["db_conv"] = dbc_part.sum(0).to(x.dtype)
        grads["dw_up"] = rows_out.t() @ a.reshape(-1, bottleneck)
        grads["db_up"] = grad_out[:, num_prefix_tokens:].sum((0, 1), dtype=torch.float32).to(x.dtype)
    return tuple(grads.values())


def _or(tensor: torch.Tensor | None, placeholder: torch.Tensor) -> torch.Tensor:
    """A kernel argument for an optional tensor (the placeholder is never read when the flag is off)."""
    return placeholder if tensor is None else tensor.contiguous()

"""Shared cases and checks for comparing a compiled implementation of the op with the float64 reference."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import torch

import fekernels
from fekernels.testing import WEIGHT_NAMES, outputs_and_grads
from tests.conftest import random_adapter_tensors

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


_MAX_ROWS = 300


def covering_cases(count: int, seed: int = 0) -> list[dict]:
    """``count`` cases in which every value of every factor appears, mixed by a seeded shuffle.

    With the Triton interpreter's 32-wide tiles, N = 37 or 50 tokens make row tiles that straddle frames and
    clips, C = 200 and R = 40 or 72 span several tiles, R = 8 is below tl.dot's minimum of 16, and K = 9
    with dilation reaches past the clip.
    """
    factors = {
        "clips": [1, 2, 3], "frames": [1, 2, 3, 8], "tokens": [1, 5, 37, 50], "dim": [48, 200],
        "bottleneck": [8, 24, 40, 72], "kernel_size": [1, 3, 5, 9], "dilation": [1, 2, 3], "prefix": [0, 1, 5],
        "activation": list(fekernels.ACTIVATIONS), "biases": [True, False],
        "dtype": [torch.float32, torch.float16, torch.bfloat16], "contiguous": [True, False],
    }
    rng = random.Random(seed)
    columns = {}
    for name, values in factors.items():
        column = (values * (count // len(values) + 1))[:count]
        rng.shuffle(column)
        columns[name] = column
    cases = [{name: columns[name][index] for name in factors} for index in range(count)]
    for case in cases:
        case["prefix"] = min(case["prefix"], case["tokens"])
        while case["clips"] > 1 and case["clips"] * case["frames"] * case["tokens"] > _MAX_ROWS:
            case["clips"] -= 1  # the interpreter's time grows with the rows
    return cases


def case_id(case: dict) -> str:
    dtype = str(case["dtype"]).removeprefix("torch.")
    return (f"B{case.get('clips', 2)}-T{case['frames']}-N{case['tokens']}-C{case['dim']}-R{case['bottleneck']}"
            f"-K{case['kernel_size']}-d{case['dilation']}-P{case['prefix']}-{case['activation']}"
            f"-{'bias' if case['biases'] else 'nobias'}"
            f"-{dtype}{'' if case['contiguous'] else '-strided'}")


CASES = covering_cases(40) + [
    # the edges, named: a conv reaching past the clip, all tokens prefix, R < 16, a single frame and token,
    # and several tiles along rows (10), C (7) and R (3) with tiles straddling frames and clips
    dict(clips=2, frames=2, tokens=5, dim=48, bottleneck=8, kernel_size=5, dilation=3, prefix=1, activation="gelu",
         biases=True, dtype=torch.float32, contiguous=True),
    dict(clips=2, frames=3, tokens=5, dim=48, bottleneck=24, kernel_size=3, dilation=1, prefix=5, activation=None,
         biases=True, dtype=torch.float32, contiguous=True),
    dict(clips=1, frames=1, tokens=1, dim=48, bottleneck=8, kernel_size=3, dilation=1, prefix=0, activation="silu",
         biases=False, dtype=torch.bfloat16, contiguous=True),
    dict(clips=2, frames=4, tokens=37, dim=200, bottleneck=72, kernel_size=9, dilation=1, prefix=1, activation="gelu",
         biases=True, dtype=torch.bfloat16, contiguous=True),
]


def make_inputs(case: dict, clips: int | None = None):
    """x (B*T, N, C), weights and grad_out in float64, fresh random values (B = ``clips`` or the case's)."""
    frames_total = (clips or case.get("clips", 2)) * case["frames"]
    if case["contiguous"]:
        x = torch.randn(frames_total, case["tokens"], case["dim"], dtype=torch.float64)
    else:  # same values, token-major storage: x is a non-contiguous view
        x = torch.randn(case["tokens"], frames_total, case["dim"], dtype=torch.float64).transpose(0, 1)
    weights = random_adapter_tensors(case["dim"], case["bottleneck"], case["kernel_size"], biases=case["biases"])
    grad_out = torch.randn(frames_total, case["tokens"], case["dim"], dtype=torch.float64)
    return x, weights, grad_out


def run_op(impl, x, weights, grad_out, dtype, options, needs_grad=("x", *WEIGHT_NAMES), device=DEVICE):
    """Output and gradients of one implementation, with inputs cast to ``dtype`` on ``device``."""
    def op(*args, **kwargs):
        return fekernels.fe_adapter(*args, **kwargs, impl=impl)

    return outputs_and_grads(op, x, weights, grad_out, dtype, options, device, needs_grad)


def options_of(case: dict) -> dict:
    """The op's keyword options for a case."""
    return dict(num_frames=case["frames"], dilation=case["dilation"], activation=case["activation"],
                num_prefix_tokens=case["prefix"])


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """fp32 matmuls and cuDNN convolutions without TF32 (its 10-bit mantissa would hide real errors)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):  # the newer API; mixing it with allow_tf32 raises
        saved = matmul.fp32_precision, cudnn.conv.fp32_precision
        matmul.fp32_precision = cudnn.conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision, cudnn.conv.fp32_precision = saved
    else:
        saved = matmul.allow_tf32, cudnn.allow_tf32
        matmul.allow_tf32 = cudnn.allow_tf32 = False
        try:
            yield
        finally:
            matmul.allow_tf32, cudnn.allow_tf32 = saved

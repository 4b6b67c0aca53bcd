"""Shared cases and checks for comparing a compiled implementation of the op with the float64 reference."""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Iterator
from unittest import mock

import torch

import fe_adapter
import fekernels
from fekernels.testing import WEIGHT_NAMES, assert_close_to_reference, ieee_fp32_on_the_kernels, outputs_and_grads
from tests.conftest import random_adapter_tensors

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


_MAX_ROWS = 200


#: (frames, dilation) pairs: in all but the first two a tap of dilation d lands inside the clip (d < T), so that a
#: conv reading the wrong frame (a flipped tap direction, a wrong stride) changes the result; (1, 1) and (2, 3)
#: keep the edges, a single frame and every off-centre tap outside the clip.
_FRAMES_AND_DILATIONS = [(1, 1), (2, 3), (2, 1), (3, 1), (3, 2), (5, 2), (8, 1), (8, 2), (8, 3)]


def taps_inside(case: dict) -> bool:
    """Whether an off-centre tap of the case's conv reads a frame of the clip (for some frame)."""
    return case["kernel_size"] > 1 and case["dilation"] < case["frames"]


def covering_cases(count: int, seed: int = 0) -> list[dict]:
    """``count`` cases in which every value of every factor appears, mixed by a seeded shuffle.

    With the Triton interpreter's 32-wide tiles, N = 37 or 50 tokens make row tiles that straddle frames and
    clips, C = 104 (three whole tiles and a ragged one of 8 columns) and R = 40 or 72 span several tiles, R = 8 is
    below tl.dot's minimum of 16, and K = 9 with dilation reaches past the clip.
    """
    factors = {
        "clips": [1, 2, 3], "frames_dilation": _FRAMES_AND_DILATIONS, "tokens": [1, 5, 37, 50], "dim": [48, 104],
        "bottleneck": [8, 24, 40, 72], "kernel_size": [1, 3, 5, 7, 9], "prefix": [0, 1, 5],
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
        case["frames"], case["dilation"] = case.pop("frames_dilation")
        case["prefix"] = min(case["prefix"], case["tokens"])
        while case["clips"] > 1 and case["clips"] * case["frames"] * case["tokens"] > _MAX_ROWS:
            case["clips"] -= 1  # the interpreter's time grows with the rows
        if case["frames"] * case["tokens"] > _MAX_ROWS:  # one clip of 8 x 50: fewer tokens, an odd count so that
            case["tokens"] = (_MAX_ROWS // case["frames"] - 1) | 1  # the last row tile of a clip is still partial
            case["prefix"] = min(case["prefix"], case["tokens"])
    return cases


def case_id(case: dict) -> str:
    dtype = str(case["dtype"]).removeprefix("torch.")
    return (f"B{case.get('clips', 2)}-T{case['frames']}-N{case['tokens']}-C{case['dim']}-R{case['bottleneck']}"
            f"-K{case['kernel_size']}-d{case['dilation']}-P{case['prefix']}-{case['activation']}"
            f"-{'bias' if case['biases'] else 'nobias'}"
            f"-{dtype}{'' if case['contiguous'] else '-strided'}")


CASES = covering_cases(40) + [
    # the edges, named: a conv reaching past the clip, all tokens prefix, R < 16, a single frame and token,
    # and several tiles along rows (10), C (4) and R (3) with tiles straddling frames and clips
    dict(clips=2, frames=2, tokens=5, dim=48, bottleneck=8, kernel_size=5, dilation=3, prefix=1, activation="gelu",
         biases=True, dtype=torch.float32, contiguous=True),
    dict(clips=2, frames=3, tokens=5, dim=48, bottleneck=24, kernel_size=3, dilation=1, prefix=5, activation=None,
         biases=True, dtype=torch.float32, contiguous=True),
    dict(clips=1, frames=1, tokens=1, dim=48, bottleneck=8, kernel_size=3, dilation=1, prefix=0, activation="silu",
         biases=False, dtype=torch.bfloat16, contiguous=True),
    dict(clips=2, frames=4, tokens=37, dim=104, bottleneck=72, kernel_size=9, dilation=1, prefix=1, activation="gelu",
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
    """Output and gradients of one implementation, with inputs cast to ``dtype`` on ``device``. For "triton", the
    kernels themselves, fp32 without TF32 included (``ieee_fp32_on_the_kernels``): a run that launched none of
    them (routed to the reference) fails."""
    def op(*args, **kwargs):
        return fekernels.fe_adapter(*args, **kwargs, impl=impl)

    if impl != "triton":
        return outputs_and_grads(op, x, weights, grad_out, dtype, options, device, needs_grad)
    from fekernels.triton_kernels import launch

    with ieee_fp32_on_the_kernels(), mock.patch.object(launch, "forward", wraps=launch.forward) as forward:
        result = outputs_and_grads(op, x, weights, grad_out, dtype, options, device, needs_grad)
    assert forward.called, "impl='triton' did not run the Triton kernels"
    return result


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


def adapted_vit(impl: str) -> torch.nn.Module:
    """A tiny adapted ViT (32 px, 2 blocks, 3 frames, dilations 1 and 2, GELU) with random, non-zero adapters.

    A new adapter is the identity (zero conv and up-projection): it adds exactly nothing and gives the
    down-projection no gradient, so a model at its start would hide a wrong kernel.
    """
    torch.manual_seed(3)
    model = fe_adapter.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=3, bottleneck=16,
                                    backbone_kwargs=dict(img_size=32, depth=2), impl=impl, dropout=0.0,
                                    activation="gelu", dilation=[1, 2], random_backbone=True).to(DEVICE)
    with torch.no_grad():
        for adapter in fe_adapter.adapters(model):
            for name, parameter in adapter.named_parameters():
                parameter.normal_(0, 0.5 if name.startswith("conv") else 0.1)
    return model


def logits_and_gradients(model: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> dict:
    """The logits of ``clips`` and the gradient of the cross-entropy loss for every trainable parameter."""
    model.zero_grad(set_to_none=True)
    logits = model(clips)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    trainable = {name.removeprefix("_orig_mod."): p.grad.detach().clone()  # torch.compile's wrapper adds the prefix
                 for name, p in model.named_parameters() if p.requires_grad}
    assert all(grad.abs().sum() > 0 for grad in trainable.values())  # every parameter really took part
    return {"logits": logits.detach(), **trainable}


def assert_model_matches_float64(model: torch.nn.Module, reference: torch.nn.Module | None = None,
                                 inputs: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
    """Logits and trainable gradients of ``model`` (fp32, any impl, maybe compiled) within the kernel tests' bound
    (2x the fp32 reference's own error) of the float64 reference model. ``reference``: the eager fp32 model
    whose adapters are switched to the reference (default: ``model`` itself, which must then be eager)."""
    reference = copy.deepcopy(model if reference is None else reference)
    for adapter in fe_adapter.adapters(reference):
        adapter.impl = "torch"
    clips, labels = inputs or (torch.randn(2, 3, 3, 32, 32), torch.tensor([0, 2]))
    clips, labels = clips.to(DEVICE), labels.to(DEVICE)
    result = logits_and_gradients(model, clips, labels)
    low = logits_and_gradients(reference.to(DEVICE), clips, labels)
    exact = logits_and_gradients(copy.deepcopy(reference).double(), clips.double(), labels)
    assert_close_to_reference(result, low, exact, torch.float32)

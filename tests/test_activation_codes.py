"""An unknown activation is refused by name at every entry point, never run as the identity: the public op, each
compiled implementation's registered ops (called directly, eager and under torch.compile's fake tensors), the C++
kernel and the Triton kernels' own activation code."""

from __future__ import annotations

import os

import pytest
import torch
import triton
import triton.language as tl

import fekernels
from fekernels import native
from fekernels._activations import ACTIVATION_CODES, ACTIVATIONS, apply_activation
from fekernels.triton_kernels import kernels
from fekernels.triton_kernels.op import fe_adapter_triton_backward_op, fe_adapter_triton_op
from tests.conftest import random_adapter_tensors

_KNOWN = r"activation must be one of \(None, 'gelu', 'silu', 'relu'\), got 'tanh'"
_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def _arguments(activation: str | None) -> tuple:
    weights = random_adapter_tensors(16, 8, 3, torch.float32)
    return (torch.randn(4, 5, 16), *weights.values(), 2, 1, activation, 1)


def _backward_arguments(activation: str | None) -> tuple:
    x, w_down, _, w_conv, b_conv, w_up, _, *_ = _arguments(None)
    z = torch.randn(4, 5, 8)
    return (torch.randn_like(x), x, z, w_down, w_conv, b_conv, w_up, 2, 1, activation, 1, True, True, True)


def _compiled_ops() -> list:
    ops = []
    if _INTERPRETED or torch.cuda.is_available():
        ops.append((fe_adapter_triton_op, fe_adapter_triton_backward_op))
    if native.AVAILABLE:
        ops.append((torch.ops.fekernels_native.forward, torch.ops.fekernels_native.backward))
    return ops


@pytest.mark.parametrize("impl", [impl for impl in fekernels.IMPLS])
def test_the_public_op_refuses_an_unknown_activation_for_every_impl(impl):
    x, *weights, _, _, _, _ = _arguments(None)
    with pytest.raises(ValueError, match=_KNOWN):
        fekernels.fe_adapter(x, *weights, num_frames=2, activation="tanh", impl=impl)


@pytest.mark.parametrize("ops", _compiled_ops(), ids=lambda ops: ops[0].__name__ if hasattr(ops[0], "__name__")
                         else str(ops[0]))
def test_each_registered_op_refuses_an_unknown_activation_by_name(ops):
    """Called directly (bypassing the public op's checks): eager, and under fake tensors (torch.compile)."""
    forward, backward = ops
    with pytest.raises(ValueError, match=_KNOWN):
        forward(*_arguments("tanh"))
    with pytest.raises(ValueError, match=_KNOWN):
        backward(*_backward_arguments("tanh"))
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode, pytest.raises(ValueError, match=_KNOWN):
        forward(*[mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in _arguments("tanh")])


@pytest.mark.parametrize("ops", _compiled_ops(), ids=lambda ops: str(ops[0]))
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_registered_op_applies_each_known_activation(ops, activation):
    """The names map to the right formula in every kernel (a swapped code would pass the checks above)."""
    forward, _ = ops
    arguments = _arguments(activation)
    out, _ = forward(*arguments)
    expected = fekernels.fe_adapter_reference(*arguments[:7], num_frames=2, dilation=1, activation=activation,
                                              num_prefix_tokens=1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@triton.jit
def _value_probe(H, OUT, ACTIVATION: tl.constexpr):
    offsets = tl.arange(0, 16)
    tl.store(OUT + offsets, kernels._activation(tl.load(H + offsets), ACTIVATION))


@triton.jit
def _grad_probe(H, OUT, ACTIVATION: tl.constexpr):
    offsets = tl.arange(0, 16)
    tl.store(OUT + offsets, kernels._activation_grad(tl.load(H + offsets), ACTIVATION))


@pytest.mark.skipif(not (_INTERPRETED or torch.cuda.is_available()), reason="needs a GPU or the Triton interpreter")
@pytest.mark.parametrize("probe", [_value_probe, _grad_probe], ids=["activation", "activation_grad"])
def test_the_triton_kernels_activation_code_refuses_an_unknown_code(probe):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    h = torch.linspace(-3, 3, 16, device=device)
    for name, code in ACTIVATION_CODES.items():
        out = torch.empty_like(h)
        probe[(1,)](h, out, ACTIVATION=code)
        leaf = h.clone().requires_grad_()
        expected = apply_activation(leaf, name)
        if probe is _grad_probe:
            (expected,) = torch.autograd.grad(expected.sum(), leaf)
        torch.testing.assert_close(out, expected.detach(), rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="unknown ACTIVATION code"):
        probe[(1,)](h, torch.empty_like(h), ACTIVATION=len(ACTIVATIONS))

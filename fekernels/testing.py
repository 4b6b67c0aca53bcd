"""The accuracy bound every implementation of the op is held to, shared by the tests and the benchmarks.

An implementation passes when each output and gradient is within twice the error the reference itself makes
in that dtype (both measured against a float64 run of the reference), plus a small absolute slack; and when
no element is NaN (the tests fill kernel outputs with NaN first, so an unwritten element fails). The
benchmarks run the same check once per implementation and shape before timing, so a broken fast path cannot
show up as a fast one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch

from fekernels import op
from fekernels.reference import fe_adapter_reference

#: The op's weight arguments, in the order of its signature.
WEIGHT_NAMES = ("w_down", "b_down", "w_conv", "b_conv", "w_up", "b_up")
#: Absolute slack per dtype, relative to the largest reference value, on top of 2x the reference's own error.
ATOL = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3}


def outputs_and_grads(
    op: Callable[..., torch.Tensor], x: torch.Tensor, weights: dict[str, torch.Tensor | None],
    grad_out: torch.Tensor | None, dtype: torch.dtype, options: dict, device: torch.device | str,
    needs_grad: Iterable[str] = ("x", *WEIGHT_NAMES),
) -> dict[str, torch.Tensor | None]:
    """``op``'s output ("out") and, when ``grad_out`` is given, the gradients of the inputs in ``needs_grad``
    (None for the others), with every input cast to ``dtype`` on ``device``."""
    needs_grad = set(needs_grad) if grad_out is not None else set()

    def prepare(name: str, tensor: torch.Tensor | None) -> torch.Tensor | None:
        if tensor is None:
            return None
        return tensor.detach().to(device=device, dtype=dtype).requires_grad_(name in needs_grad)

    x_in = prepare("x", x)
    weights_in = {name: prepare(name, weights[name]) for name in WEIGHT_NAMES}
    out = op(x_in, **weights_in, **options)
    results: dict[str, torch.Tensor | None] = {"out": out.detach()}
    if grad_out is None:
        return results
    inputs = {"x": x_in, **weights_in}
    wanted = [name for name, tensor in inputs.items() if tensor is not None and tensor.requires_grad]
    grads = torch.autograd.grad(out, [inputs[name] for name in wanted], grad_out.to(device=device, dtype=dtype))
    results.update({name: None for name, tensor in inputs.items() if tensor is not None})
    results.update(dict(zip(wanted, grads, strict=True)))
    return results


def assert_close_to_reference(result: dict, low: dict, exact: dict, dtype: torch.dtype) -> None:
    """Every entry of ``result`` within 2x the error of ``low`` (the reference in ``dtype``) from ``exact``
    (the reference in float64), plus ``ATOL[dtype]`` times the largest exact value; None where exact is None."""
    for name, expected in exact.items():
        if expected is None:
            assert result[name] is None, f"{name}: computed although not requested"
            continue
        value = result[name]
        assert value is not None and value.dtype == dtype, f"{name}: missing, or not in {dtype}"
        assert torch.isfinite(value).all(), f"{name}: unwritten (NaN) or non-finite elements"
        expected = expected.to(value.device)
        error = (value.double() - expected).abs().max().item()
        reference_error = (low[name].double().to(value.device) - expected).abs().max().item()
        scale = max(1.0, expected.abs().max().item())
        bound = 2 * reference_error + ATOL[dtype] * scale
        assert error <= bound, f"{name}: error {error:.3g} > {bound:.3g} (the reference's own: {reference_error:.3g})"


def check_against_reference(
    op: Callable[..., torch.Tensor], x: torch.Tensor, weights: dict[str, torch.Tensor | None],
    grad_out: torch.Tensor | None, options: dict, needs_grad: Iterable[str] = ("x", *WEIGHT_NAMES),
) -> None:
    """Assert that ``op`` on these inputs (in their dtype and device) passes the bound; with ``grad_out``,
    every gradient in ``needs_grad`` too. The float64 reference runs on the same device."""
    dtype, device = x.dtype, x.device
    exact = outputs_and_grads(fe_adapter_reference, x, weights, grad_out, torch.float64, options, device, needs_grad)
    low = outputs_and_grads(fe_adapter_reference, x, weights, grad_out, dtype, options, device, needs_grad)
    result = outputs_and_grads(op, x, weights, grad_out, dtype, options, device, needs_grad)
    assert_close_to_reference(result, low, exact, dtype)


@contextlib.contextmanager
def ieee_fp32_on_the_kernels() -> Iterator[None]:
    """For tests only: run fp32 without TF32 on the Triton kernels (their IEEE path) instead of routing it to the
    reference (``fekernels.op.ROUTE_IEEE_FP32_TO_REFERENCE``), so that fp32 cases test the kernels."""
    previous = op.ROUTE_IEEE_FP32_TO_REFERENCE
    op.ROUTE_IEEE_FP32_TO_REFERENCE = False
    try:
        yield
    finally:
        op.ROUTE_IEEE_FP32_TO_REFERENCE = previous

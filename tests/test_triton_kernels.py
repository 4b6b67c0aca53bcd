"""The fused Triton kernels against the float64 reference: forward and every gradient.

On a CPU machine the kernels run under the Triton interpreter (TRITON_INTERPRET=1, set in conftest.py),
so these tests exercise the kernels themselves, not the reference. On a GPU they run compiled.
"""

from __future__ import annotations

import pytest
import torch

import fe_adapter
import fekernels
from fekernels.triton_kernels import launch
from fekernels.triton_kernels.op import fe_adapter_triton_backward_op, fe_adapter_triton_op
from tests.conftest import random_adapter_tensors, train_steps
from tests.kernel_cases import (
    CASES,
    DEVICE,
    WEIGHT_NAMES,
    assert_close_to_reference,
    case_id,
    make_inputs,
    run_op,
)


@pytest.fixture(autouse=True)
def _poison_and_strict_fp32(monkeypatch):
    monkeypatch.setattr(launch, "POISON_OUTPUTS", True)
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # the newer API; mixing it with allow_tf32 raises
        precision, matmul.fp32_precision = matmul.fp32_precision, "ieee"
        yield
        matmul.fp32_precision = precision
    else:
        allow_tf32, matmul.allow_tf32 = matmul.allow_tf32, False
        yield
        matmul.allow_tf32 = allow_tf32


@pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
def test_fused_kernels_match_the_float64_reference(case):
    x, weights, grad_out = make_inputs(case)
    options = dict(num_frames=case["frames"], dilation=case["dilation"], activation=case["activation"],
                   num_prefix_tokens=case["prefix"])
    exact = run_op("torch", x, weights, grad_out, torch.float64, options)
    low = run_op("torch", x, weights, grad_out, case["dtype"], options)
    fused = run_op("triton", x, weights, grad_out, case["dtype"], options)
    assert_close_to_reference(fused, low, exact, case["dtype"])


@pytest.mark.parametrize(
    "needs_grad",
    [("w_down", "b_down", "w_conv", "b_conv", "w_up", "b_up"), ("x",), ("x", "w_up"), ("w_down",), ("b_conv",)],
    ids=["frozen-input", "frozen-adapter", "up-only", "down-only", "conv-bias-only"],
)
def test_backward_respects_which_inputs_need_grad(needs_grad):
    case = dict(frames=3, tokens=5, dim=48, bottleneck=24, kernel_size=3, dilation=1, prefix=1, activation="gelu",
                biases=True, dtype=torch.float32, contiguous=True)
    x, weights, grad_out = make_inputs(case)
    options = dict(num_frames=3, dilation=1, activation="gelu", num_prefix_tokens=1)
    exact = run_op("torch", x, weights, grad_out, torch.float64, options, needs_grad)
    fused = run_op("triton", x, weights, grad_out, torch.float32, options, needs_grad)
    for name in ("x", *WEIGHT_NAMES):
        if name in needs_grad:
            torch.testing.assert_close(fused[name].double(), exact[name].to(DEVICE), rtol=1e-4, atol=1e-5)
        else:
            assert fused[name] is None, name


@pytest.mark.parametrize("contiguous", [True, False])
def test_opcheck_passes(contiguous):
    case = dict(frames=2, tokens=5, dim=48, bottleneck=8, kernel_size=3, dilation=1, prefix=1, activation="silu",
                biases=True, dtype=torch.float32, contiguous=contiguous)
    x, weights, grad_out = make_inputs(case)
    tensors = [x.float().to(DEVICE).requires_grad_()]
    tensors += [weights[name].float().to(DEVICE).requires_grad_() for name in WEIGHT_NAMES]
    torch.library.opcheck(fe_adapter_triton_op, (*tensors, 2, 1, "silu", 1))

    out, z = fe_adapter_triton_op(*[t.detach() for t in tensors], 2, 1, "silu", 1)
    x_, w_down, _, w_conv, b_conv, w_up, _ = (t.detach() for t in tensors)
    grad = grad_out.float().to(DEVICE)
    for need in [(True, True, True), (False, True, False), (True, False, True)]:
        arguments = (grad, x_, z, w_down, w_conv, b_conv, w_up, 2, 1, "silu", 1, *need)
        torch.library.opcheck(fe_adapter_triton_backward_op, arguments)


def test_compiled_adapted_vit_has_no_graph_break():
    model = fe_adapter.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=2, bottleneck=16,
                                    backbone_kwargs=dict(img_size=32, depth=2), impl="triton", dropout=0.0)
    model = model.to(DEVICE)
    clips = torch.randn(2, 2, 3, 32, 32, device=DEVICE)
    eager = model(clips)
    backend = "inductor" if DEVICE == "cuda" else "aot_eager"  # inductor on CPU would compile C++ for minutes
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    logits = compiled(clips)
    logits.sum().backward()
    torch.testing.assert_close(logits, eager, rtol=1e-4, atol=1e-5)
    assert all(a.down_weight.grad is not None for a in fe_adapter.adapters(model))


def test_training_with_triton_matches_torch_step_by_step():
    def train(impl: str) -> list[float]:
        torch.manual_seed(3)
        model = fe_adapter.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=2, bottleneck=16,
                                        backbone_kwargs=dict(img_size=32), impl=impl, dropout=0.0,
                                        activation="gelu", dilation=[1, 2] * 6).to(DEVICE)
        clips = torch.randn(2, 2, 3, 32, 32, device=DEVICE)
        return train_steps(model, clips, torch.tensor([0, 2], device=DEVICE), steps=3)

    torch_losses, triton_losses = train("torch"), train("triton")
    assert torch_losses[-1] < torch_losses[0]
    assert triton_losses == pytest.approx(torch_losses, rel=1e-4)


def test_dispatch():
    x = torch.randn(4, 3, 16)
    assert fekernels.resolve_impl("auto", x) == ("native" if "native" in fekernels.IMPLS else "torch")
    assert fekernels.resolve_impl("triton", x) == "triton"
    if torch.cuda.is_available():
        assert fekernels.resolve_impl("auto", x.cuda()) == "triton"
    assert all(a.impl == "triton" for a in fe_adapter.adapters(
        fe_adapter.create_model("vit_tiny_patch16_224", num_frames=2, bottleneck=8, impl="triton",
                                backbone_kwargs=dict(img_size=32, depth=2))))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error without the interpreter")
def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    weights = random_adapter_tensors(16, 8, 3, torch.float32)
    with pytest.raises(ValueError, match="impl='triton' needs CUDA tensors.*TRITON_INTERPRET=1"):
        fekernels.fe_adapter(torch.randn(4, 3, 16), **weights, num_frames=2, impl="triton")
    with pytest.raises(ValueError, match="float32, float16 and bfloat16"):
        fekernels.fe_adapter(torch.randn(4, 3, 16, dtype=torch.float64),
                             **random_adapter_tensors(16, 8, 3), num_frames=2, impl="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("bottleneck", [64, 384])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_vit_b_shapes_on_gpu(bottleneck, dtype):
    case = dict(frames=16, tokens=197, dim=768, bottleneck=bottleneck, kernel_size=3, dilation=2, prefix=1,
                activation=None, biases=True, dtype=dtype, contiguous=True)
    x, weights, grad_out = make_inputs(case, clips=8)
    options = dict(num_frames=16, dilation=2, activation=None, num_prefix_tokens=1)
    exact = run_op("torch", x, weights, grad_out, torch.float64, options)
    low = run_op("torch", x, weights, grad_out, dtype, options)
    fused = run_op("triton", x, weights, grad_out, dtype, options)
    assert_close_to_reference(fused, low, exact, dtype)

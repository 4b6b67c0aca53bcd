"""The Triton kernels against the float64 reference: forward and every gradient.

On a CPU machine the kernels run under the Triton interpreter (TRITON_INTERPRET=1, set in conftest.py),
so these tests exercise the kernels themselves, not the reference, with the interpreter's fixed 32-wide
tiles (the cases span several tiles along rows, R and C). On a GPU they run compiled and autotuned, and
``test_every_autotune_config_is_correct`` forces each config in turn.
"""

from __future__ import annotations

import pytest
import torch

import fe_adapter
import fekernels
from fekernels.testing import WEIGHT_NAMES, assert_close_to_reference
from fekernels.triton_kernels import launch
from fekernels.triton_kernels.op import fe_adapter_triton_backward_op, fe_adapter_triton_op
from tests.conftest import random_adapter_tensors, train_steps
from tests.kernel_cases import CASES, DEVICE, case_id, make_inputs, options_of, run_op, strict_fp32


@pytest.fixture(autouse=True)
def _poison_and_strict_fp32(monkeypatch):
    monkeypatch.setattr(launch, "POISON_OUTPUTS", True)
    with strict_fp32():
        yield


def _check_against_reference(case: dict) -> None:
    x, weights, grad_out = make_inputs(case)
    options = options_of(case)
    exact = run_op("torch", x, weights, grad_out, torch.float64, options)
    low = run_op("torch", x, weights, grad_out, case["dtype"], options)
    fused = run_op("triton", x, weights, grad_out, case["dtype"], options)
    assert_close_to_reference(fused, low, exact, case["dtype"])


@pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
def test_fused_kernels_match_the_float64_reference(case):
    _check_against_reference(case)


_NEEDS_GRAD = {
    "frozen-input": ("w_down", "b_down", "w_conv", "b_conv", "w_up", "b_up"),  # grad_z_kernel instead of grad_x
    "frozen-adapter": ("x",),  # grad_x without storing dz, grad_h without a and partials
    "up-only": ("x", "w_up"),
    "down-only": ("w_down",),
    "conv-bias-only": ("b_conv",),
    "input-and-down": ("x", "b_down"),  # grad_x storing dz
}


@pytest.mark.parametrize("needs_grad", list(_NEEDS_GRAD.values()), ids=list(_NEEDS_GRAD))
def test_backward_respects_which_inputs_need_grad(needs_grad):
    case = dict(clips=2, frames=3, tokens=37, dim=48, bottleneck=40, kernel_size=3, dilation=1, prefix=1,
                activation="gelu", biases=True, dtype=torch.float32, contiguous=True)
    x, weights, grad_out = make_inputs(case)
    options = options_of(case)
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
    for need in [(True, True, True), (False, True, False), (True, False, True), (False, False, True)]:
        arguments = (grad, x_, z, w_down, w_conv, b_conv, w_up, 2, 1, "silu", 1, *need)
        torch.library.opcheck(fe_adapter_triton_backward_op, arguments)


def test_compiled_adapted_vit_has_no_graph_break():
    """Compiled and eager logits both within float32 rounding of a float64 run of the same model.

    They are not compared with each other at a fixed tolerance: inductor fuses and reorders the backbone's
    reductions, so the two differ by rounding, and TF32 (off here, for matmuls and cuDNN convolutions)
    would add ~1e-3 relative noise. The bound is the one every kernel test uses: 2x eager's own error.
    """
    model = fe_adapter.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=2, bottleneck=16,
                                    backbone_kwargs=dict(img_size=32, depth=2), impl="triton", dropout=0.0)
    with torch.no_grad():  # non-zero adapters, so that the kernels change the logits
        for adapter in fe_adapter.adapters(model):
            adapter.conv_weight.normal_(0, 0.5)
            adapter.up_weight.normal_(0, 0.1)
    model = model.to(DEVICE).eval()
    clips = torch.randn(2, 2, 3, 32, 32, device=DEVICE)
    exact = _float64_twin(model)(clips.double()).detach()
    eager = model(clips).detach()
    backend = "inductor" if DEVICE == "cuda" else "aot_eager"  # inductor on CPU would compile C++ for minutes
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    logits = compiled(clips)
    logits.sum().backward()
    assert_close_to_reference({"logits": logits.detach()}, {"logits": eager}, {"logits": exact}, torch.float32)
    assert all(a.down_weight.grad is not None for a in fe_adapter.adapters(model))


def _float64_twin(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    twin = copy.deepcopy(model).double()
    for adapter in fe_adapter.adapters(twin):
        adapter.impl = "torch"
    return twin


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


def test_triton_is_selected_by_name():
    x = torch.randn(4, 3, 16)
    assert fekernels.resolve_impl("triton", x) == "triton"
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


_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@_GPU
@pytest.mark.parametrize("bottleneck", [64, 384])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("clips", [1, 8])
def test_vit_b_shapes_on_gpu(clips, bottleneck, dtype):
    _check_against_reference(dict(clips=clips, frames=16, tokens=197, dim=768, bottleneck=bottleneck, kernel_size=3,
                                  dilation=2, prefix=1, activation=None, biases=True, dtype=dtype, contiguous=True))


@_GPU
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("name", list(launch.KERNELS))
def test_every_autotune_config_is_correct(name, dtype):
    """Autotuning picks one config per shape; this runs each of a kernel's configs on a shape that leaves
    partial tiles in every dimension (ViT-B/16 rows, R = 200), so a config that breaks shows here."""
    case = dict(clips=2, frames=16, tokens=197, dim=768, bottleneck=200, kernel_size=3, dilation=1, prefix=1,
                activation="gelu", biases=True, dtype=dtype, contiguous=True)
    x, weights, grad_out = make_inputs(case)
    options = options_of(case)
    exact = run_op("torch", x, weights, grad_out, torch.float64, options)
    low = run_op("torch", x, weights, grad_out, dtype, options)
    needs_grad = ("w_down", *WEIGHT_NAMES) if name == "grad_z" else ("x", *WEIGHT_NAMES)  # grad_z: x frozen
    for config in launch.KERNELS[name].configs:
        with launch.forced_config(name, config):
            fused = run_op("triton", x, weights, grad_out, dtype, options, needs_grad)
        try:
            assert_close_to_reference(fused, low, {k: v if k in ("out", *needs_grad) else None
                                                   for k, v in exact.items()}, dtype)
        except AssertionError as error:
            raise AssertionError(f"{name} with {config}: {error}") from None

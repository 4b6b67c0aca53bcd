"""The Triton kernels against the float64 reference: forward and every gradient.

On a CPU machine the kernels run under the Triton interpreter (TRITON_INTERPRET=1, set in conftest.py),
so these tests exercise the kernels themselves, not the reference, with the interpreter's fixed 32-wide
tiles (the cases span several tiles along rows, R and C). On a GPU they run compiled, with one small config
per kernel (one compile per case) except where marked ``autotuned``: there the autotuner chooses, and
``test_every_autotune_config_is_correct`` forces each config it may choose in turn.
"""

from __future__ import annotations

import pytest
import torch
import triton

import fe_adapter
import fekernels
from fekernels.testing import WEIGHT_NAMES, assert_close_to_reference, ieee_fp32_on_the_kernels
from fekernels.triton_kernels import launch
from fekernels.triton_kernels.op import fe_adapter_triton_backward_op, fe_adapter_triton_op
from tests.conftest import random_adapter_tensors
from tests.kernel_cases import (
    CASES,
    DEVICE,
    adapted_vit,
    assert_model_matches_float64,
    case_id,
    make_inputs,
    options_of,
    run_op,
    strict_fp32,
)

_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
#: On a GPU, tests run every kernel with one small config that fits any case, so that each case compiles
#: each kernel once instead of autotuning over every config; tests marked ``autotuned`` keep autotuning.
_ONE_CONFIG = {name: triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=4,
                                   num_stages=2)
               for name in launch.KERNELS}


@pytest.fixture(autouse=True)
def _poison_strict_fp32_one_config(request, monkeypatch):
    monkeypatch.setattr(launch, "POISON_OUTPUTS", True)
    forced = _ONE_CONFIG if DEVICE == "cuda" and not request.node.get_closest_marker("autotuned") else {}
    with strict_fp32(), ieee_fp32_on_the_kernels(), launch.forced_configs(forced):
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
    "frozen-input": ("w_down", "b_down", "w_conv", "b_conv", "w_up", "b_up"),  # no grad_x
    "frozen-adapter": ("x",),  # grad_h without a and the weight partials
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


def test_compiled_adapted_vit_matches_float64_without_graph_break():
    """Compiled logits and gradients within 2x the error of the eager model with the reference op (impl="torch"),
    from a float64 run of that model. Not against the eager Triton model: it runs the same kernels, so a bound
    from it would move with a kernel bug. TF32 is off (matmuls and cuDNN), since its ~1e-3 noise would hide
    errors; inductor fuses and reorders the backbone's reductions, which stays within the bound."""
    model = adapted_vit("triton")
    backend = "inductor" if DEVICE == "cuda" else "aot_eager"  # inductor on CPU would compile C++ for minutes
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    assert_model_matches_float64(compiled, reference=model)


def test_gradients_of_a_training_step_match_float64():
    """Gradients, not losses: AdamW's normalised steps (and a first loss that does not depend on them) cannot see
    a gradient of the wrong scale."""
    assert_model_matches_float64(adapted_vit("triton"))


def test_triton_is_selected_by_name():
    x = torch.randn(4, 3, 16)
    assert fekernels.resolve_impl("triton", x) == "triton"
    assert all(a.impl == "triton" for a in fe_adapter.adapters(
        fe_adapter.create_model("vit_tiny_patch16_224", num_frames=2, bottleneck=8, impl="triton",
                                backbone_kwargs=dict(img_size=32, depth=2), random_backbone=True)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error without the interpreter")
def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    weights = random_adapter_tensors(16, 8, 3, torch.float32)
    with pytest.raises(ValueError, match="impl='triton' needs CUDA tensors.*TRITON_INTERPRET=1"):
        fekernels.fe_adapter(torch.randn(4, 3, 16), **weights, num_frames=2, impl="triton")
    with pytest.raises(ValueError, match="float32, float16 and bfloat16"):
        fekernels.fe_adapter(torch.randn(4, 3, 16, dtype=torch.float64),
                             **random_adapter_tensors(16, 8, 3), num_frames=2, impl="triton")


def test_more_frames_than_the_smallest_tile_holds_is_a_clear_error():
    """The conv's tiles hold every frame of a clip: a longer clip is refused, not silently mis-tiled."""
    frames = launch._SMALLEST_BLOCK_M + 1
    weights = {name: t.to(DEVICE) for name, t in random_adapter_tensors(16, 8, 3, torch.float32).items()}
    with pytest.raises(ValueError, match=f"num_frames up to {launch._SMALLEST_BLOCK_M} .*got num_frames = {frames}"):
        fekernels.fe_adapter(torch.randn(frames, 2, 16, device=DEVICE), **weights, num_frames=frames, impl="triton")


@_GPU
@pytest.mark.autotuned
@pytest.mark.parametrize("bottleneck", [64, 384])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("clips", [1, 8])
def test_vit_b_shapes_on_gpu(clips, bottleneck, dtype):
    _check_against_reference(dict(clips=clips, frames=16, tokens=197, dim=768, bottleneck=bottleneck, kernel_size=3,
                                  dilation=2, prefix=1, activation=None, biases=True, dtype=dtype, contiguous=True))


@_GPU
@pytest.mark.autotuned
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_a_long_kernel_prunes_the_configs_that_do_not_fit(dtype):
    """K = 9 taps need K buffered tiles of the conv operand: most configs exceed the shared memory in fp32
    (and the largest in bf16); the autotuner must drop them, not crash."""
    _check_against_reference(dict(clips=2, frames=16, tokens=197, dim=768, bottleneck=384, kernel_size=9,
                                  dilation=1, prefix=1, activation="gelu", biases=True, dtype=dtype, contiguous=True))


#: For each kernel, gradients to ask for so that each of its variants runs (grad_h without dz: only the conv and
#: up-projection train; without the weight partials: only x).
_VARIANTS = {
    "forward_down": [("x", *WEIGHT_NAMES)],
    "forward_up": [("x", *WEIGHT_NAMES)],
    "grad_h": [("x", *WEIGHT_NAMES), ("w_conv", "b_conv", "w_up", "b_up"), ("x",)],
    "grad_x": [("x", *WEIGHT_NAMES)],
}


@_GPU
@pytest.mark.autotuned
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("name", list(launch.KERNELS))
def test_every_autotune_config_is_correct(name, dtype):
    """Autotuning picks one config per shape; this runs each config the kernel may pick for this shape on a
    GPU, on a shape with partial tiles in every dimension (ViT-B/16 rows, C = 840, R = 200)."""
    case = dict(clips=2, frames=16, tokens=197, dim=840, bottleneck=200, kernel_size=3, dilation=1, prefix=1,
                activation="gelu", biases=True, dtype=dtype, contiguous=True)
    x, weights, grad_out = make_inputs(case)
    options = options_of(case)
    element_size = torch.tensor([], dtype=dtype).element_size()
    configs = launch.usable_configs(name, launch.KERNELS[name].configs, case["kernel_size"], element_size,
                                    torch.device(DEVICE))
    for needs_grad in _VARIANTS[name]:
        exact = run_op("torch", x, weights, grad_out, torch.float64, options, needs_grad)
        low = run_op("torch", x, weights, grad_out, dtype, options, needs_grad)
        for config in configs:
            with launch.forced_configs({name: config}):
                fused = run_op("triton", x, weights, grad_out, dtype, options, needs_grad)
            try:
                assert_close_to_reference(fused, low, exact, dtype)
            except AssertionError as error:
                raise AssertionError(f"{name} with {config}, gradients of {needs_grad}: {error}") from None


@_GPU
@pytest.mark.autotuned
def test_fp32_with_tf32_allowed_stays_within_tf32_rounding():
    """With TF32 on (PyTorch's default for cuDNN, opt-in for matmuls), the kernels' fp32 products use it too;
    the reference under the same setting is the yardstick."""
    case = dict(clips=2, frames=16, tokens=197, dim=768, bottleneck=384, kernel_size=3, dilation=1, prefix=1,
                activation="gelu", biases=True, dtype=torch.float32, contiguous=True)
    x, weights, grad_out = make_inputs(case)
    options = options_of(case)
    exact = run_op("torch", x, weights, grad_out, torch.float64, options)
    matmul = torch.backends.cuda.matmul
    saved = matmul.fp32_precision if hasattr(matmul, "fp32_precision") else matmul.allow_tf32
    try:
        if hasattr(matmul, "fp32_precision"):
            matmul.fp32_precision = "tf32"
        else:
            matmul.allow_tf32 = True
        low = run_op("torch", x, weights, grad_out, torch.float32, options)
        fused = run_op("triton", x, weights, grad_out, torch.float32, options)
    finally:
        if hasattr(matmul, "fp32_precision"):
            matmul.fp32_precision = saved
        else:
            matmul.allow_tf32 = saved
    assert_close_to_reference(fused, low, exact, torch.float32)


@_GPU
@pytest.mark.autotuned
def test_deterministic_mode_takes_its_clean_config_instead_of_autotuning():
    """Autotuning picks configs by timing, which may differ between processes; under PyTorch's deterministic
    algorithms the launchers take ``launch.deterministic_config`` (a tile the offline compile found clean), so the
    results equal a run forced to it. Needs CUBLAS_WORKSPACE_CONFIG (set by tests/conftest.py)."""
    case = dict(clips=2, frames=16, tokens=197, dim=768, bottleneck=384, kernel_size=3, dilation=1, prefix=1,
                activation="gelu", biases=True, dtype=torch.float32, contiguous=True)
    x, weights, grad_out = make_inputs(case)
    chosen = {name: launch.deterministic_config(name, 3, 4, torch.device(DEVICE)) for name in launch.KERNELS}
    with launch.forced_configs(chosen):
        forced = run_op("triton", x, weights, grad_out, torch.float32, options_of(case))
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        deterministic = run_op("triton", x, weights, grad_out, torch.float32, options_of(case))
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
    for name, value in forced.items():
        assert torch.equal(value, deterministic[name]), name

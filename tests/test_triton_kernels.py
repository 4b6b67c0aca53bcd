"""The fused Triton kernels against the float64 reference: forward and every gradient.

On a CPU machine the kernels run under the Triton interpreter (TRITON_INTERPRET=1, set in conftest.py),
so these tests exercise the kernels themselves, not the reference. On a GPU they run compiled.
"""

from __future__ import annotations

import random

import pytest
import torch

import fe_adapter
import fekernels
from fekernels.triton_kernels import launch
from fekernels.triton_kernels.op import fe_adapter_triton_backward_op, fe_adapter_triton_op
from tests.conftest import random_adapter_tensors, train_steps

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
WEIGHT_NAMES = ("w_down", "b_down", "w_conv", "b_conv", "w_up", "b_up")
#: absolute slack per dtype, relative to the largest reference value, on top of 2x the reference's own error
ATOL = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3}


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


def _covering_cases(count: int, seed: int = 0) -> list[dict]:
    """``count`` cases in which every value of every factor appears, mixed by a seeded shuffle."""
    factors = {
        "frames": [1, 2, 3, 8], "tokens": [1, 5, 50], "dim": [48, 200], "bottleneck": [8, 24, 64],
        "kernel_size": [1, 3, 5], "dilation": [1, 2, 3], "prefix": [0, 1, 5],
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
    return cases


def _case_id(case: dict) -> str:
    dtype = str(case["dtype"]).removeprefix("torch.")
    return (f"T{case['frames']}-N{case['tokens']}-C{case['dim']}-R{case['bottleneck']}-K{case['kernel_size']}"
            f"-d{case['dilation']}-P{case['prefix']}-{case['activation']}-{'bias' if case['biases'] else 'nobias'}"
            f"-{dtype}{'' if case['contiguous'] else '-strided'}")


CASES = _covering_cases(36) + [
    # the edges, named: a conv reaching past the clip, all tokens prefix, R < 16, a single frame and token
    dict(frames=2, tokens=5, dim=48, bottleneck=8, kernel_size=5, dilation=3, prefix=1, activation="gelu",
         biases=True, dtype=torch.float32, contiguous=True),
    dict(frames=3, tokens=5, dim=48, bottleneck=24, kernel_size=3, dilation=1, prefix=5, activation=None,
         biases=True, dtype=torch.float32, contiguous=True),
    dict(frames=1, tokens=1, dim=48, bottleneck=8, kernel_size=3, dilation=1, prefix=0, activation="silu",
         biases=False, dtype=torch.bfloat16, contiguous=True),
]


def _make_inputs(case: dict, clips: int = 2):
    frames_total = clips * case["frames"]
    if case["contiguous"]:
        x = torch.randn(frames_total, case["tokens"], case["dim"], dtype=torch.float64)
    else:  # same values, token-major storage: x is a non-contiguous view
        x = torch.randn(case["tokens"], frames_total, case["dim"], dtype=torch.float64).transpose(0, 1)
    weights = random_adapter_tensors(case["dim"], case["bottleneck"], case["kernel_size"], biases=case["biases"])
    grad_out = torch.randn(frames_total, case["tokens"], case["dim"], dtype=torch.float64)
    return x, weights, grad_out


def _run(impl, x, weights, grad_out, dtype, options, needs_grad=("x", *WEIGHT_NAMES)):
    """Output and gradients of one implementation, with inputs cast to ``dtype`` on DEVICE."""
    def prepare(name, tensor):
        if tensor is None:
            return None
        tensor = tensor.to(device=DEVICE, dtype=dtype).detach()
        return tensor.requires_grad_(name in needs_grad)

    x_in = prepare("x", x)
    weights_in = {name: prepare(name, tensor) for name, tensor in weights.items()}
    out = fekernels.fe_adapter(x_in, **weights_in, **options, impl=impl)
    out.backward(grad_out.to(device=DEVICE, dtype=dtype))
    results = {"out": out.detach(), "x": x_in.grad}
    results.update({name: tensor.grad for name, tensor in weights_in.items() if tensor is not None})
    return results


def _assert_close_to_reference(fused: dict, low: dict, exact: dict, dtype: torch.dtype) -> None:
    for name, expected in exact.items():
        if expected is None:
            assert fused[name] is None, name
            continue
        expected = expected.to(DEVICE)
        assert fused[name] is not None and fused[name].dtype == dtype, name
        assert torch.isfinite(fused[name]).all(), f"{name}: unwritten (NaN) or non-finite elements"
        fused_error = (fused[name].double() - expected).abs().max().item()
        torch_error = (low[name].double() - expected).abs().max().item()
        scale = max(1.0, expected.abs().max().item())
        bound = 2 * torch_error + ATOL[dtype] * scale
        assert fused_error <= bound, f"{name}: error {fused_error:.3g} > {bound:.3g} (torch's own: {torch_error:.3g})"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_fused_kernels_match_the_float64_reference(case):
    x, weights, grad_out = _make_inputs(case)
    options = dict(num_frames=case["frames"], dilation=case["dilation"], activation=case["activation"],
                   num_prefix_tokens=case["prefix"])
    exact = _run("torch", x, weights, grad_out, torch.float64, options)
    low = _run("torch", x, weights, grad_out, case["dtype"], options)
    fused = _run("triton", x, weights, grad_out, case["dtype"], options)
    _assert_close_to_reference(fused, low, exact, case["dtype"])


@pytest.mark.parametrize(
    "needs_grad",
    [("w_down", "b_down", "w_conv", "b_conv", "w_up", "b_up"), ("x",), ("x", "w_up"), ("w_down",), ("b_conv",)],
    ids=["frozen-input", "frozen-adapter", "up-only", "down-only", "conv-bias-only"],
)
def test_backward_respects_which_inputs_need_grad(needs_grad):
    case = dict(frames=3, tokens=5, dim=48, bottleneck=24, kernel_size=3, dilation=1, prefix=1, activation="gelu",
                biases=True, dtype=torch.float32, contiguous=True)
    x, weights, grad_out = _make_inputs(case)
    options = dict(num_frames=3, dilation=1, activation="gelu", num_prefix_tokens=1)
    exact = _run("torch", x, weights, grad_out, torch.float64, options, needs_grad)
    fused = _run("triton", x, weights, grad_out, torch.float32, options, needs_grad)
    for name in ("x", *WEIGHT_NAMES):
        if name in needs_grad:
            torch.testing.assert_close(fused[name].double(), exact[name].to(DEVICE), rtol=1e-4, atol=1e-5)
        else:
            assert fused[name] is None, name


@pytest.mark.parametrize("contiguous", [True, False])
def test_opcheck_passes(contiguous):
    case = dict(frames=2, tokens=5, dim=48, bottleneck=8, kernel_size=3, dilation=1, prefix=1, activation="silu",
                biases=True, dtype=torch.float32, contiguous=contiguous)
    x, weights, grad_out = _make_inputs(case)
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
    assert fekernels.resolve_impl("auto", x) == "torch"
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
    x, weights, grad_out = _make_inputs(case, clips=8)
    options = dict(num_frames=16, dilation=2, activation=None, num_prefix_tokens=1)
    exact = _run("torch", x, weights, grad_out, torch.float64, options)
    low = _run("torch", x, weights, grad_out, dtype, options)
    fused = _run("triton", x, weights, grad_out, dtype, options)
    _assert_close_to_reference(fused, low, exact, dtype)

"""Every bad input to the op raises the documented error, naming the argument."""

from __future__ import annotations

import pytest
import torch

import fekernels
from tests.conftest import random_adapter_tensors

DIM, BOTTLENECK, KERNEL, FRAMES = 16, 8, 3, 4


def _call(**overrides):
    arguments = {"x": torch.randn(2 * FRAMES, 5, DIM), **random_adapter_tensors(DIM, BOTTLENECK, KERNEL,
                                                                                    torch.float32)}
    options = {"num_frames": FRAMES, "dilation": 1, "activation": None, "num_prefix_tokens": 1, "impl": "auto"}
    for name, value in overrides.items():
        (arguments if name in arguments else options)[name] = value
    return fekernels.fe_adapter(*arguments.values(), **options)


CASES = [
    # (overrides, error type, fragments the message must contain)
    ({"x": torch.randn(8, 16)}, ValueError, ["x", "3-D", "(8, 16)"]),
    ({"x": [[1.0]]}, TypeError, ["x", "torch.Tensor", "list"]),
    ({"x": torch.randint(0, 5, (8, 5, DIM))}, TypeError, ["x", "floating-point", "torch.int64"]),
    ({"x": torch.randn(7, 5, DIM)}, ValueError, ["x.shape[0]", "7", "num_frames = 4"]),
    ({"num_frames": 0}, ValueError, ["num_frames", ">= 1", "0"]),
    ({"num_frames": 4.0}, TypeError, ["num_frames", "int", "float"]),
    ({"w_down": torch.randn(BOTTLENECK, DIM + 1)}, ValueError, ["w_down", "(R, C)", "16", "(8, 17)"]),
    ({"w_down": torch.randn(DIM)}, ValueError, ["w_down", "(16,)"]),
    ({"w_conv": torch.randn(BOTTLENECK + 1, 3)}, ValueError, ["w_conv", "(R, K)", "(9, 3)"]),
    ({"w_conv": torch.randn(BOTTLENECK, 4)}, ValueError, ["w_conv", "odd", "K = 4"]),
    ({"w_up": torch.randn(DIM, BOTTLENECK + 2)}, ValueError, ["w_up", "(C, R)", "(16, 8)", "(16, 10)"]),
    ({"b_down": torch.randn(BOTTLENECK + 1)}, ValueError, ["b_down", "(R,)", "(9,)"]),
    ({"b_conv": torch.randn(BOTTLENECK, 1)}, ValueError, ["b_conv", "(R,)", "(8, 1)"]),
    ({"b_up": torch.randn(DIM - 1)}, ValueError, ["b_up", "(C,)", "(15,)"]),
    ({"b_up": 0.0}, TypeError, ["b_up", "torch.Tensor or None", "float"]),
    ({"dilation": 0}, ValueError, ["dilation", ">= 1", "0"]),
    ({"num_prefix_tokens": 6}, ValueError, ["num_prefix_tokens", "0..5", "6"]),
    ({"num_prefix_tokens": -1}, ValueError, ["num_prefix_tokens", ">= 0", "-1"]),
    ({"w_up": torch.randn(DIM, BOTTLENECK, dtype=torch.float64)}, ValueError, ["w_up", "float64", "float32"]),
    ({"b_conv": torch.randn(BOTTLENECK, device="meta")}, ValueError, ["b_conv", "meta", "cpu"]),
    ({"activation": "tanh"}, ValueError, ["activation", "'tanh'", "gelu"]),
    ({"impl": "cuda"}, ValueError, ["impl", "'cuda'", "torch"]),
]


@pytest.mark.parametrize("overrides, error, fragments", CASES, ids=[str(list(c[0])) for c in CASES])
def test_bad_input_raises_a_clear_error(overrides, error, fragments):
    with pytest.raises(error) as raised:
        _call(**overrides)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


def test_valid_call_passes():
    assert _call().shape == (2 * FRAMES, 5, DIM)

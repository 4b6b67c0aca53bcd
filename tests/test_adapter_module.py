"""The FEAdapter module: identity at initialisation, gradients, configuration errors."""

from __future__ import annotations

import pytest
import torch

import fekernels
from fe_adapter import FEAdapter


def _randomise(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0.0, 0.2)


def test_new_adapter_is_the_identity():
    adapter = FEAdapter(32, 8, num_frames=4, kernel_size=5, dilation=2, activation="gelu", num_prefix_tokens=1)
    x = torch.randn(8, 6, 32)
    assert torch.equal(adapter(x), x)


def test_forward_matches_the_op_with_the_modules_tensors():
    adapter = FEAdapter(32, 8, num_frames=4, kernel_size=3, dilation=2, activation="silu", num_prefix_tokens=2,
                        impl="torch")
    _randomise(adapter)
    x = torch.randn(8, 6, 32)
    expected = fekernels.fe_adapter_reference(
        x, adapter.down_weight, adapter.down_bias, adapter.conv_weight, adapter.conv_bias,
        adapter.up_weight, adapter.up_bias, num_frames=4, dilation=2, activation="silu", num_prefix_tokens=2,
    )
    torch.testing.assert_close(adapter(x), expected, rtol=0, atol=0)


def test_num_frames_can_be_overridden_per_call():
    adapter = FEAdapter(16, 4, num_frames=4)
    _randomise(adapter)
    x = torch.randn(12, 3, 16)
    with pytest.raises(ValueError, match="num_frames = 8"):
        adapter(x, num_frames=8)
    assert adapter(x, num_frames=3).shape == x.shape


def test_gradients_reach_every_tensor():
    adapter = FEAdapter(24, 8, num_frames=3, kernel_size=3, activation="gelu", num_prefix_tokens=1)
    _randomise(adapter)
    x = torch.randn(6, 5, 24, requires_grad=True)
    adapter(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, param in adapter.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_parameter_count_formula():
    adapter = FEAdapter(768, 384, num_frames=16, kernel_size=3)
    assert sum(p.numel() for p in adapter.parameters()) == FEAdapter.num_parameters_for(768, 384, 3) == 592_512


def test_repr_shows_the_configuration():
    text = repr(FEAdapter(64, 16, num_frames=8, kernel_size=5, dilation=2, activation="relu"))
    for fragment in ("dim=64", "bottleneck=16", "num_frames=8", "kernel_size=5", "dilation=2", "activation=relu"):
        assert fragment in text


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"kernel_size": 4}, ValueError, "kernel_size must be odd"),
        ({"bottleneck": 0}, ValueError, "bottleneck must be >= 1"),
        ({"dim": 3.5}, TypeError, "dim must be an int"),
        ({"num_prefix_tokens": -1}, ValueError, "num_prefix_tokens must be >= 0"),
        ({"activation": "tanh"}, ValueError, "activation must be one of"),
        ({"impl": "fast"}, ValueError, "impl must be one of"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, error, fragment):
    arguments = {"dim": 16, "bottleneck": 4, "num_frames": 2, **kwargs}
    with pytest.raises(error, match=fragment):
        FEAdapter(**arguments)

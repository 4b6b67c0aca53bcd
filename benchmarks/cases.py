"""What the benchmarks measure: shapes, implementations, and the timed callables."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch

import fekernels
from fekernels.baselines import fe_adapter_st_layout
from fekernels.cost import backward_cost, forward_cost

CUDA = torch.cuda.is_available()


@dataclass(frozen=True)
class OpShape:
    """One op configuration: B clips of T frames, N tokens of width C, bottleneck R, kernel K."""

    model: str
    clips: int
    frames: int
    tokens: int
    dim: int
    bottleneck: int
    kernel_size: int
    dilation: int
    dtype: torch.dtype

    @property
    def id(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return (f"{self.model}-B{self.clips}-T{self.frames}-R{self.bottleneck}-d{self.dilation}-{dtype}")

    @property
    def rows(self) -> int:
        return self.clips * self.frames * self.tokens

    def cost(self, with_backward: bool):
        element = torch.tensor([], dtype=self.dtype).element_size()
        arguments = (self.rows, self.dim, self.bottleneck, self.kernel_size, element)
        forward = forward_cost(*arguments)
        if not with_backward:
            return forward
        backward = backward_cost(*arguments)
        return type(forward)(forward.flops + backward.flops, forward.bytes + backward.bytes)


_MODELS = {"vit_b16": (197, 768), "vit_l14": (257, 1024), "vit_tiny16": (197, 192)}


def op_shapes() -> list[OpShape]:
    """The issue's grid on a GPU; fp32 at small batch on a CPU."""
    if CUDA:
        grid = itertools.product(["vit_b16", "vit_l14"], [1, 8], [64, 384], [1, 2], [torch.bfloat16, torch.float32])
        return [OpShape(m, b, 16, *_MODELS[m], r, 3, d, dt) for m, b, r, d, dt in grid]
    grid = itertools.product(["vit_tiny16", "vit_b16"], [1], [64], [1])
    return [OpShape(m, b, 8, *_MODELS[m], r, 3, d, torch.float32) for m, b, r, d in grid]


def implementations() -> dict[str, Callable]:
    """Name -> op with the reference's signature. ``native`` joins when the C++ CPU kernel exists."""

    def compiled(mode: str | None) -> Callable:
        return torch.compile(fekernels.fe_adapter_reference, mode=mode, dynamic=False)

    impls: dict[str, Callable] = {"eager_st": fe_adapter_st_layout, "torch": fekernels.fe_adapter_reference,
                                  "compiled": compiled(None)}
    if CUDA:
        impls["compiled_max_autotune"] = compiled("max-autotune-no-cudagraphs")
        impls["triton"] = lambda *args, **kwargs: fekernels.fe_adapter(*args, **kwargs, impl="triton")
    if "native" in fekernels.IMPLS:
        impls["native"] = lambda *args, **kwargs: fekernels.fe_adapter(*args, **kwargs, impl="native")
    return impls


def input_sets(shape: OpShape, device: torch.device, with_grad: bool, l2_bytes: int = 64 << 20):
    """Enough independent input sets to rotate through, so the cache does not hold the previous call's data."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    x_bytes = shape.rows * shape.dim * torch.tensor([], dtype=shape.dtype).element_size()
    count = max(2, min(8, -(-2 * l2_bytes // max(1, x_bytes))))

    def tensor(*size: int, scale: float = 1.0) -> torch.Tensor:
        value = (torch.randn(*size, generator=generator) * scale).to(device=device, dtype=shape.dtype)
        return value.requires_grad_(with_grad)

    sets = []
    for _ in range(count):
        frames = shape.clips * shape.frames
        x = tensor(frames, shape.tokens, shape.dim)
        weights = (tensor(shape.bottleneck, shape.dim, scale=shape.dim**-0.5), tensor(shape.bottleneck, scale=0.1),
                   tensor(shape.bottleneck, shape.kernel_size, scale=0.5), tensor(shape.bottleneck, scale=0.1),
                   tensor(shape.dim, shape.bottleneck, scale=shape.bottleneck**-0.5), tensor(shape.dim, scale=0.1))
        grad = torch.randn(frames, shape.tokens, shape.dim, generator=generator).to(device=device, dtype=shape.dtype)
        sets.append((x, weights, grad))
    return sets

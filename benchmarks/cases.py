"""What the benchmarks measure: shapes, implementations, and the timed callables."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch

import fekernels
from fekernels.baselines import fe_adapter_st_layout
from fekernels.cost import backward_cost, forward_cost
from fekernels.testing import WEIGHT_NAMES, check_against_reference

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
    def options(self) -> dict:
        """The op's keyword options for this shape (one prefix token, no activation)."""
        return dict(num_frames=self.frames, dilation=self.dilation, num_prefix_tokens=1)

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


def compiled_reference(mode: str | None = None, backend: str = "inductor") -> Callable:
    """torch.compile of the reference, one graph per shape (``dynamic=False``).

    Dynamo allows 8 graphs per code object before it silently runs the rest eagerly, and every compiled
    wrapper of the reference shares one code object: a benchmark grid passes that limit, so it is raised,
    and hitting it is made an error rather than an eager timing labelled "compiled".
    """
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    return torch.compile(fekernels.fe_adapter_reference, mode=mode, dynamic=False, backend=backend)


def implementations() -> dict[str, Callable]:
    """Name -> op with the reference's signature. ``native`` joins when the C++ CPU kernel exists."""
    impls: dict[str, Callable] = {"eager_st": fe_adapter_st_layout, "torch": fekernels.fe_adapter_reference,
                                  "compiled": compiled_reference()}
    if CUDA:
        impls["compiled_max_autotune"] = compiled_reference("max-autotune-no-cudagraphs")
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


def call_op(op: Callable, item: tuple, options: dict, with_backward: bool) -> torch.Tensor:
    """One timed call on one input set: the op and, with the backward, the gradients of x and every weight
    (by ``torch.autograd.grad``, so no call pays for accumulating into the previous call's ``.grad``)."""
    x, weights, grad = item
    out = op(x, *weights, **options)
    if with_backward:
        torch.autograd.grad(out, (x, *weights), grad)
    return out


def check_op(op: Callable, item: tuple, options: dict, with_backward: bool) -> None:
    """Fail unless ``op`` matches the float64 reference on this input set (every gradient too, with the
    backward), so that a broken implementation is never timed."""
    x, weights, grad = item
    check_against_reference(op, x, dict(zip(WEIGHT_NAMES, weights, strict=True)), grad if with_backward else None,
                            options)


def with_random_adapters(model: torch.nn.Module, std: float = 0.02) -> torch.nn.Module:
    """``model`` with every adapter weight drawn from N(0, ``std``), as after training: a new model's adapters
    add nothing (their up-projection starts at zero), which a prediction benchmark should not time."""
    import fe_adapter

    with torch.no_grad():
        for adapter in fe_adapter.adapters(model):
            for parameter in adapter.parameters():
                parameter.normal_(0, std)
    return model


def training_step(backbone: str, backbone_kwargs: dict, clips: int, frames: int, impl: str, compiled: bool,
                  device: torch.device, backend: str = "inductor") -> tuple[Callable, list]:
    """A training step (forward under bf16 autocast on a GPU, backward, AdamW) of an adapted ViT, and two
    input batches to rotate through. The step returns the loss."""
    import fe_adapter

    size = backbone_kwargs.get("img_size", 224)
    generator = torch.Generator().manual_seed(0)
    inputs = [(torch.randn(clips, frames, 3, size, size, generator=generator).to(device),
               torch.randint(0, 7, (clips,), generator=generator).to(device)) for _ in range(2)]
    torch.manual_seed(0)
    model = fe_adapter.create_model(backbone, num_classes=7, num_frames=frames, impl=impl,
                                    backbone_kwargs=backbone_kwargs, random_backbone=True).to(device)
    network = torch.compile(model, backend=backend) if compiled else model
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(item: tuple) -> torch.Tensor:
        clips_in, labels = item
        with autocast:
            loss = torch.nn.functional.cross_entropy(network(clips_in).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step, inputs

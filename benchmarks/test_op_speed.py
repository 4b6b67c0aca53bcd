"""Op-level speed: forward and forward+backward of every implementation on identical inputs.

Run ``pytest benchmarks/ --benchmark-json=run.json`` then ``python -m benchmarks.report run.json``.
"""

from __future__ import annotations

import pytest

from benchmarks.cases import CUDA, OpShape, call_op, check_op, implementations, input_sets, op_shapes
from benchmarks.timing import run_pedantic

IMPLEMENTATIONS = implementations()
SHAPES = op_shapes()
ROUNDS, WARMUP = (50, 5) if CUDA else (10, 2)


def _compiles(shape: OpShape) -> bool:
    """torch.compile takes ~1 min per shape and pass on a GPU (max-autotune): only the headline shapes."""
    return not CUDA or (shape.model == "vit_b16" and shape.clips == 8 and shape.dilation == 1)


@pytest.mark.parametrize("passes", ["forward", "forward_backward"])
@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=[shape.id for shape in SHAPES])
def test_op(benchmark, device, ceilings, shape: OpShape, impl: str, passes: str):
    if impl.startswith("compiled") and not _compiles(shape):
        pytest.skip("compiled variants run on the ViT-B, B=8, d=1 shapes only, to fit the 8-minute GPU check")
    with_backward = passes == "forward_backward"
    op = IMPLEMENTATIONS[impl]
    sets = input_sets(shape, device, with_backward)
    check_op(op, sets[0], shape.options, with_backward)

    def call(item):
        return call_op(op, item, shape.options, with_backward)

    cost = shape.cost(with_backward)
    benchmark.group = f"{shape.id}-{passes}"
    benchmark.extra_info.update(
        impl=impl, passes=passes, shape=shape.id, flops=cost.flops, bytes=cost.bytes,
        roofline_s=cost.roofline_seconds(ceilings["bandwidth_bytes_per_s"], ceilings["matmul_flops_per_s"]),
        **ceilings,
    )
    run_pedantic(benchmark, call, sets, device, ROUNDS, WARMUP)

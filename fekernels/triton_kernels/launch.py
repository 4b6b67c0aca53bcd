"""Launchers for the Triton kernels: buffers, grids, autotuned configs, and the weight-gradient reductions.

Forward: ``forward_down_kernel`` (z and a = act(conv(z) + bc)), then ``forward_up_kernel``: 2 launches.
Backward: ``grad_h_kernel`` (dh, a, dz and the per-tile partials), then ``grad_x_kernel`` when dx is wanted,
two library GEMMs over all rows for dWu = dout^T a and dWd = dz^T x, and ``reduce_partials_kernel``, one
fixed-order sum of the kernels' per-tile fp32 partials into dWc, dbc, dbd and dbu: at most 5 launches,
nothing zero-filled, no casts (tests/test_launch_count.py counts them). No atomics anywhere: a rerun gives
bitwise the same gradients.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator

import torch
import triton
import triton.language as tl

from fekernels._activations import activation_code
from fekernels._precision import tf32_allowed
from fekernels.triton_kernels import kernels

_TRITON_DTYPES = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16}

#: Tests set this to fill every buffer a kernel writes with NaN first, so that an unwritten element shows.
POISON_OUTPUTS = False


def interpreted() -> bool:
    """True when Triton runs kernels through its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


#: GEMM tiles tried on a GPU, (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages). Configs that would need more
#: shared memory than the device has (fp32, large K) are pruned per call (``usable_configs``); the last tile is
#: small enough for fp32 at K = 9, and with one stage it fits any K.
_GEMM_TILES = [(128, 128, 64, 8, 3), (128, 256, 32, 8, 3), (128, 64, 64, 8, 4), (64, 128, 64, 4, 4),
               (64, 64, 64, 4, 3), (64, 64, 32, 4, 2)]
_SMALLEST_GEMM = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}
#: One fixed config under the interpreter (autotuning needs a GPU driver). Its tiles are small enough for the
#: tests' shapes to span several along rows, R and C, and of three different sizes, so that mixing up
#: BLOCK_M, BLOCK_N and BLOCK_K fails.
_INTERPRETER = {"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 16, "GROUP_M": 4}
_GROUP_M = 8
#: The kernels whose loop loads the K conv taps of an operand (each tap tile is multi-buffered): none since
#: every conv moved into an epilogue; kept so that the shared-memory bound says what it assumes.
_TAPS_ON_LOAD = {"forward_down": False, "forward_up": False, "grad_h": False, "grad_x": False}


def _gemm_configs() -> list[triton.Config]:
    if interpreted():
        return [triton.Config(dict(_INTERPRETER))]
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "GROUP_M": _GROUP_M}, num_warps=w, num_stages=s)
            for m, n, k, w, s in _GEMM_TILES]


def shared_memory_estimate(name: str, config: triton.Config, kernel_size: int, element_size: int) -> int:
    """An upper bound on the bytes of shared memory a GEMM kernel needs with ``config``: (stages - 1)
    buffers of its loop's operand tiles (each of the K conv taps gets its own) plus one of each operand.
    Compiled offline for sm_90 with Triton 3.6 and 3.8 over every config, dtype and K in {3, 9}, the real
    allocation was never above it and never so far below that a config that fits was dropped."""
    m, n, k = (config.kwargs[key] for key in ("BLOCK_M", "BLOCK_N", "BLOCK_K"))
    taps = kernel_size if _TAPS_ON_LOAD[name] else 1
    return ((max(config.num_stages, 1) - 1) * (taps * m + n) + m + n) * k * element_size + 2048


#: Tiles (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages) that a Triton version, (major, minor), compiles unclean for
#: sm_90a in bf16 or fp16, per kernel: 255 registers, spills or serialised wgmma (C7515) in the committed offline
#: compile (benchmarks/results/offline-compile-sm90a.md, that version's section). ``usable_configs`` prunes them
#: when the kernels run under that version. Triton 3.6 (the GPU image's): forward_up's 128x256x32 takes 255
#: registers with C7515 (bf16), grad_x's 255 with spills; both are clean under Triton 3.8, which keeps them.
UNCLEAN_TILES: dict[tuple[int, int], dict[str, frozenset[tuple[int, ...]]]] = {
    (3, 6): {"forward_up": frozenset({(128, 256, 32, 8, 3)}), "grad_x": frozenset({(128, 256, 32, 8, 3)})},
}


def unclean_tiles(name: str, triton_version: str | None = None) -> frozenset[tuple[int, ...]]:
    """The tiles of GEMM kernel ``name`` that ``triton_version`` (by default the running Triton's) compiles
    unclean (``UNCLEAN_TILES``)."""
    major, minor = (int(part) for part in (triton_version or triton.__version__).split(".")[:2])
    return UNCLEAN_TILES.get((major, minor), {}).get(name, frozenset())


def config_tile(config: triton.Config) -> tuple[int, ...]:
    """A GEMM config as its tile (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages): the inverse of ``tile_config``."""
    return (*(config.kwargs[key] for key in ("BLOCK_M", "BLOCK_N", "BLOCK_K")), config.num_warps, config.num_stages)


@functools.cache
def _shared_memory_limit(device_index: int) -> int:
    return triton.runtime.driver.active.utils.get_device_properties(device_index)["max_shared_mem"]


def usable_configs(name: str, configs: list[triton.Config], kernel_size: int, element_size: int,
                   device: torch.device | None = None, limit: int | None = None,
                   triton_version: str | None = None) -> list[triton.Config]:
    """The configs of GEMM kernel ``name`` that fit ``limit`` bytes of shared memory (by default, ``device``'s)
    and that ``triton_version`` (by default the running Triton) compiles clean (``UNCLEAN_TILES``), in order;
    never empty (the smallest tile with one stage fits any kernel size)."""
    if limit is None:
        limit = _shared_memory_limit(device.index if device.index is not None else torch.cuda.current_device())
    unclean = unclean_tiles(name, triton_version)
    fitting = [c for c in configs if shared_memory_estimate(name, c, kernel_size, element_size) <= limit
               and config_tile(c) not in unclean]
    return fitting or [triton.Config({**_SMALLEST_GEMM, "GROUP_M": _GROUP_M}, num_warps=4, num_stages=1)]


def _pruner(name: str):
    """The autotuner's early_config_prune for GEMM kernel ``name``: the configs that fit."""

    def prune(configs: list[triton.Config], named_args: dict, **kwargs) -> list[triton.Config]:
        tensor = next(value for value in named_args.values() if isinstance(value, torch.Tensor))
        element_size = kwargs["DTYPE"].primitive_bitwidth // 8
        return usable_configs(name, configs, kwargs.get("K", 1), element_size, tensor.device)

    return prune


#: The partial-sum workspace has room for one row per row tile of the smallest BLOCK_M any config may pick; a
#: launch writes (and the reduction reads) only the rows of its own config's tiles.
_SMALLEST_BLOCK_M = min(config.kwargs["BLOCK_M"] for config in _gemm_configs())

#: Integer arguments Triton must not specialise. Triton compiles a kernel again for an int equal to 1 and for one
#: divisible by 16: P and dilation are 1 in common models (a ViT's one cls token, the first blocks' dilation) and
#: N and T may be, so a ViT with dilations 1, 2, 4 would compile each kernel twice; M (= B*T*N, read only by the
#: row masks) is divisible by 16 for some batch sizes and not others. C and R stay specialised: they are
#: strides, and their divisibility by 16 is what lets the loads be vectorised.
NOT_SPECIALISED = ("M", "N", "T", "P", "dilation")


def _unspecialised(kernel):
    """``kernel`` (a @triton.jit function of kernels.py) compiled without specialising NOT_SPECIALISED."""
    return triton.jit(kernel.fn, do_not_specialize=[name for name in NOT_SPECIALISED if name in kernel.arg_names])


#: Triton's own autotuning key (the kernel's shape and every switch that changes what it computes; the dtypes of
#: its tensors are added by Triton). The launchers add a bucketed key on top (``autotune_key``).
_KEY = ["M", "N", "C", "R", "T", "K", "ACTIVATION", "IEEE", "HAS_BC", "HAS_BU"]
_PRUNERS = {name: _pruner(name) for name in _TAPS_ON_LOAD}


def _autotuned(name: str, kernel, *switches: str):
    """``kernel`` unspecialised and autotuned over the GEMM configs that fit, keyed on those of _KEY and
    ``switches`` it takes. No config needs reset_to_zero: every output element has exactly one writer."""
    key = [arg for arg in (*_KEY, *switches) if arg in kernel.arg_names]
    return triton.autotune(_gemm_configs(), key=key, prune_configs_by={"early_config_prune": _PRUNERS[name]})(
        _unspecialised(kernel))


#: Name -> autotuned kernel.
KERNELS = {
    "forward_down": _autotuned("forward_down", kernels.forward_down_kernel),
    "forward_up": _autotuned("forward_up", kernels.forward_up_kernel),
    "grad_h": _autotuned("grad_h", kernels.grad_h_kernel, "NEED_DZ", "NEED_WEIGHT_GRADS"),
    "grad_x": _autotuned("grad_x", kernels.grad_x_kernel),
}
#: Arguments left out of the launchers' autotuning key: they change neither the work of a tile nor, so, the best
#: config, and are not specialised, so the blocks of a ViT with dilations 1, 2, 4 share one tuning and one compile.
_NOT_IN_KEY = ("P", "dilation")


def autotune_key(name: str, named_args: dict) -> tuple:
    """What the launchers tune once for: the kernel, its integer and constexpr arguments (N, C, R, T, K, DTYPE,
    IEEE (TF32 or not), ACTIVATION, biases, which outputs...) and M = B*T*N rounded up to the next power of two,
    so that another batch size of the same model (a last, partial batch; evaluation) reuses the tuning of its
    bucket instead of timing every config again. Tensors (only their dtype matters, in DTYPE), P and dilation are
    left out."""
    key: list = [name]
    for arg, value in named_args.items():
        if isinstance(value, torch.Tensor) or arg in _NOT_IN_KEY:
            continue
        if arg == "M":
            value = triton.next_power_of_2(value)
        key.append((arg, value if isinstance(value, bool | int | float | str) else str(value)))
    return tuple(key)


#: Deterministic mode's tile per (kernel, element size): (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages). Not the
#: autotuner's pick (it depends on timings) and not merely the first config, but the largest tile (of two as large,
#: the one needing fewer registers) that the offline
#: sm_90a compile (benchmarks/results/offline-compile-sm90a.md; fp32 with TF32, fp32 without it being routed to the
#: reference) found clean - registers below 255, no spills, no serialised wgmma (C7515) - in every case (Triton
#: version, dtype, K, activation) where any kept config is clean. tests/test_launch.py derives it from the committed
#: data again.
DETERMINISTIC_TILES: dict[tuple[str, int], tuple[int, ...]] = {
    (name, element_size): (128, 128, 64, 8, 3)
    for name in ("forward_down", "forward_up", "grad_h", "grad_x") for element_size in (2, 4)
}


def tile_config(tile: tuple[int, ...]) -> triton.Config:
    """The config of a GEMM tile (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages)."""
    m, n, k, warps, stages = tile
    return triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "GROUP_M": _GROUP_M}, num_warps=warps,
                         num_stages=stages)


def deterministic_config(name: str, kernel_size: int, element_size: int, device: torch.device | None = None,
                         limit: int | None = None) -> triton.Config:
    """The config kernel ``name`` runs with under PyTorch's deterministic algorithms: its DETERMINISTIC_TILES
    entry, or the one-stage tile that fits any K when that one does not fit ``limit`` (by default the device's)."""
    config = tile_config(DETERMINISTIC_TILES[(name, element_size)])
    return usable_configs(name, [config], kernel_size, element_size, device, limit)[0]


#: Bucketed autotuning key -> the config the autotuner chose for the first shape of that bucket.
_tuned: dict[tuple, triton.Config] = {}
_forced: dict[str, triton.Config] = {}


@contextlib.contextmanager
def forced_configs(configs: dict[str, triton.Config]) -> Iterator[None]:
    """Run the named kernels with these configs instead of autotuning (tests check every config this way)."""
    for config in configs.values():
        if config.kwargs["BLOCK_M"] < _SMALLEST_BLOCK_M:  # the partial buffers have no slots for its tiles
            raise ValueError(f"BLOCK_M must be >= {_SMALLEST_BLOCK_M}, got {config}")
    previous = dict(_forced)
    _forced.update(configs)
    try:
        yield
    finally:
        _forced.clear()
        _forced.update(previous)


def _launch(name: str, columns: int, row_tiles: Callable[[int], int], *args, **kwargs) -> int:
    """Launch kernel ``name`` over ``row_tiles(BLOCK_M)`` x ``columns`` tiles: with a forced config; or, when
    PyTorch's deterministic algorithms are on, with ``deterministic_config``, so that the tiling (and with it the
    order of every sum) does not depend on timings and is the same in every process; or with the config the
    autotuner chose for this shape's bucket (``autotune_key``), autotuning on the first shape of a bucket.
    Returns the number of row tiles it ran (the rows of per-tile partials it wrote)."""

    def grid(meta):
        return (row_tiles(meta["BLOCK_M"]) * triton.cdiv(columns, meta["BLOCK_N"]),)

    tuned = KERNELS[name]
    config = _forced.get(name)
    if config is None and len(tuned.configs) > 1:  # one config under the interpreter: nothing to choose
        named_args = dict(zip(tuned.arg_names, args, strict=False)) | kwargs  # arg_names also lists the constexprs
        if torch.are_deterministic_algorithms_enabled():
            device = next(value for value in args if isinstance(value, torch.Tensor)).device
            config = deterministic_config(name, kwargs.get("K", 1), kwargs["DTYPE"].primitive_bitwidth // 8, device)
        else:
            key = autotune_key(name, named_args)
            config = _tuned.get(key)
            if config is None:
                tuned[grid](*args, **kwargs)
                _tuned[key] = config = tuned.best_config
                return row_tiles(config.kwargs["BLOCK_M"])
    if config is None:  # the interpreter's one config
        tuned[grid](*args, **kwargs)
        config = tuned.configs[0]
    else:
        tuned.fn[grid](*args, **kwargs, **config.kwargs, num_warps=config.num_warps, num_stages=config.num_stages)
    return row_tiles(config.kwargs["BLOCK_M"])


def _empty(shape: tuple[int, ...], like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    buffer = torch.empty(shape, dtype=dtype or like.dtype, device=like.device)
    return buffer.fill_(float("nan")) if POISON_OUTPUTS else buffer


#: reduce_partials_kernel's fixed tile (no autotuning: its order of summation must not depend on timings).
_REDUCE_CONFIG = {"BLOCK_S": 32, "BLOCK_W": 64 if interpreted() else 128}
#: It is not specialised on SLOTS, the number of row tiles, which changes with the batch size.
_REDUCE_PARTIALS = triton.jit(kernels.reduce_partials_kernel.fn, do_not_specialize=["SLOTS"])


def _reduce_partials(part: torch.Tensor, layout: dict[str, int], grads: dict, like: torch.Tensor, slots: int,
                     bottleneck: int, kernel_size: int, dim: int, flags: dict) -> None:
    """One launch sums the workspace's per-tile partials into dw_conv, db_conv, db_down and db_up (x's dtype;
    ``like``, an empty tensor of that dtype, stands in for the ones not wanted)."""
    need_weights, need_down = grads["dw_conv"] is not None, grads["db_down"] is not None
    grid = (triton.cdiv(max(bottleneck * kernel_size, dim), _REDUCE_CONFIG["BLOCK_W"]), 4)
    _REDUCE_PARTIALS[grid](
        part, *(_or(grads[name], like) for name in ("dw_conv", "db_conv", "db_down", "db_up")),
        part.stride(0), bottleneck, dim, slots, layout["dbd"], layout["dbu"],
        K=kernel_size, WEIGHTS=need_weights, DOWN=need_down, DTYPE=flags["DTYPE"], UPCAST=flags["UPCAST"],
        **_REDUCE_CONFIG)


def _workspace_layout(bottleneck: int, kernel_size: int, dim: int, need_dz: bool,
                      need_weights: bool) -> dict[str, int]:
    """Column offsets of the partials in the backward's fp32 workspace, and its width: [dWc (R*K) | dbc (R) |
    dbu (C)] when the weight gradients are wanted, [dbd (R)] when dz is formed (read only when the
    down-projection's gradients are wanted)."""
    layout = {"dwc": 0, "dbc": bottleneck * kernel_size, "dbu": bottleneck * (kernel_size + 1)}
    layout["dbd"] = (layout["dbu"] + dim) if need_weights else 0
    layout["width"] = layout["dbd"] + bottleneck * need_dz
    return layout


def kernel_flags(dtype: torch.dtype, interpreter: bool, tf32: bool) -> dict:
    """The kernels' precision switches: DTYPE, UPCAST (every load to fp32: the interpreter computes bf16/fp16
    wrongly) and IEEE (fp32 tl.dot without TF32: for fp32 when TF32 is not allowed, and under the interpreter).
    fp32 without TF32 reaches the kernels only in tests (``fekernels.op.ROUTE_IEEE_FP32_TO_REFERENCE``)."""
    return {"DTYPE": _TRITON_DTYPES[dtype], "UPCAST": interpreter,
            "IEEE": interpreter or (dtype == torch.float32 and not tf32)}


def _flags(x: torch.Tensor) -> dict:
    return kernel_flags(x.dtype, interpreted(), tf32_allowed())


def _device(x: torch.Tensor):
    """Launch on x's device (the backward runs on an autograd thread, whose current device may differ)."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _check_supported(x: torch.Tensor) -> None:
    """Raise a ValueError unless the kernels can run on x (dtype, and CUDA or the interpreter)."""
    if x.dtype not in _TRITON_DTYPES:
        raise ValueError(f"impl='triton' supports float32, float16 and bfloat16, got x.dtype = {x.dtype}")
    if x.device.type != "cuda" and not interpreted():
        raise ValueError(
            f"impl='triton' needs CUDA tensors (x is on {x.device}); on CPU it runs only under the Triton "
            "interpreter (set TRITON_INTERPRET=1 before importing fekernels)"
        )


def _row_tiles(rows: int, num_tokens: int, num_frames: int, clip_major: bool) -> Callable[[int], int]:
    """BLOCK_M -> the number of row tiles: in row order, or clip-major (all T frames of BLOCK_M // T tokens)."""
    if clip_major:
        return lambda block_m: rows // (num_frames * num_tokens) * triton.cdiv(num_tokens, block_m // num_frames)
    return lambda block_m: triton.cdiv(rows, block_m)


def _check_frames(num_frames: int) -> None:
    if num_frames > _SMALLEST_BLOCK_M:
        raise ValueError(f"impl='triton' supports num_frames up to {_SMALLEST_BLOCK_M} (a tile holds every frame "
                         f"of a clip), got num_frames = {num_frames}; use impl='torch'")


def forward(
    x: torch.Tensor, w_down: torch.Tensor, b_down: torch.Tensor | None, w_conv: torch.Tensor,
    b_conv: torch.Tensor | None, w_up: torch.Tensor, b_up: torch.Tensor | None,
    num_frames: int, dilation: int, activation: str | None, num_prefix_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the forward. Returns ``out`` (like x) and ``z`` ((B*T, N, R), x Wd^T + bd on every row, prefix too)."""
    _check_supported(x)
    _check_frames(num_frames)
    x = x.contiguous()
    frames_total, num_tokens, dim = x.shape
    bottleneck, kernel_size = w_conv.shape
    rows = frames_total * num_tokens
    x_rows = x.view(rows, dim)
    z = _empty((rows, bottleneck), x)
    a = _empty((rows, bottleneck), x)
    out = _empty(x.shape, x)
    shape = (rows, num_tokens, dim, bottleneck, num_frames, num_prefix_tokens)
    flags = _flags(x)
    with _device(x):
        _launch("forward_down", bottleneck, _row_tiles(rows, num_tokens, num_frames, True),
                x_rows, w_down.contiguous(), _or(b_down, w_down), w_conv.contiguous(), _or(b_conv, w_conv), z, a,
                *shape, dilation, HAS_BD=b_down is not None, HAS_BC=b_conv is not None, K=kernel_size,
                ACTIVATION=activation_code(activation), **flags)
        _launch("forward_up", dim, _row_tiles(rows, num_tokens, num_frames, False),
                x_rows, a, w_up.contiguous(), _or(b_up, w_up), out, *shape, HAS_BU=b_up is not None, **flags)
    return out, z.view(frames_total, num_tokens, bottleneck)


def backward(
    grad_out: torch.Tensor, x: torch.Tensor, z: torch.Tensor, w_down: torch.Tensor, w_conv: torch.Tensor,
    b_conv: torch.Tensor | None, w_up: torch.Tensor,
    num_frames: int, dilation: int, activation: str | None, num_prefix_tokens: int,
    need_x: bool, need_down: bool, need_weights: bool,
) -> tuple[torch.Tensor | None, ...]:
    """Gradients (dx, dw_down, db_down, dw_conv, db_conv, dw_up, db_up); None where not needed.

    ``need_down``: gradients of w_down/b_down are wanted; ``need_weights``: of the conv and up-projection.
    """
    frames_total, num_tokens, dim = x.shape
    bottleneck, kernel_size = w_conv.shape
    rows = frames_total * num_tokens
    dout = grad_out.contiguous().view(rows, dim)
    z_rows = z.contiguous().view(rows, bottleneck)
    nothing = x.new_empty(0)
    dh = _empty((rows, bottleneck), x)  # da, then dh: the epilogue's scratch
    dz = _empty((rows, bottleneck), x) if need_down or need_x else nothing
    a = _empty((rows, bottleneck), x) if need_weights else nothing
    dx = _empty(x.shape, x) if need_x else nothing
    # One fp32 workspace for every per-row-tile partial, row s = grad_h's clip-major row tile s (room for the
    # smallest BLOCK_M). grad_h writes every element of its own rows, so nothing is zeroed first.
    layout = _workspace_layout(bottleneck, kernel_size, dim, need_down or need_x, need_weights)
    clip_tiles = _row_tiles(rows, num_tokens, num_frames, True)
    part = _empty((clip_tiles(_SMALLEST_BLOCK_M), layout["width"]), x, torch.float32)
    w_conv = w_conv.contiguous()
    shape = (rows, num_tokens, dim, bottleneck, num_frames, num_prefix_tokens)
    flags = _flags(x)
    grads: dict[str, torch.Tensor | None] = dict.fromkeys(
        ("dx", "dw_down", "db_down", "dw_conv", "db_conv", "dw_up", "db_up")
    )
    if need_weights:
        grads.update(dw_conv=_empty(w_conv.shape, x), db_conv=_empty((bottleneck,), x), db_up=_empty((dim,), x))
    if need_down:
        grads["db_down"] = _empty((bottleneck,), x)
    with _device(x):
        slots_h = _launch("grad_h", bottleneck, clip_tiles,
                          dout, z_rows, w_conv, _or(b_conv, w_conv), w_up.contiguous(), dh, a, dz,
                          *(part[:, layout[name]:] for name in ("dwc", "dbc", "dbd", "dbu")), *shape, dilation,
                          part.stride(0), HAS_BC=b_conv is not None, K=kernel_size,
                          ACTIVATION=activation_code(activation), NEED_DZ=need_down or need_x,
                          NEED_WEIGHT_GRADS=need_weights, **flags)
        if need_x:
            _launch("grad_x", dim, _row_tiles(rows, num_tokens, num_frames, False),
                    dout, dz, w_down.contiguous(), dx, *shape, **flags)
            grads["dx"] = dx
        if need_down:
            grads["dw_down"] = dz.t() @ x.contiguous().view(rows, dim)
        if need_weights:
            grads["dw_up"] = dout.t() @ a
        if need_down or need_weights:
            _reduce_partials(part, layout, grads, nothing, slots_h, bottleneck, kernel_size, dim, flags)
    return tuple(grads.values())


def _or(tensor: torch.Tensor | None, placeholder: torch.Tensor) -> torch.Tensor:
    """A kernel argument for an optional tensor (the placeholder is never read when the flag is off)."""
    return placeholder if tensor is None else tensor.contiguous()

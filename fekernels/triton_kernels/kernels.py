"""Fused Triton kernels of the FE-Adapter op: one launch for the forward, one for the backward.

Each program owns one clip and a block of BLOCK_M token positions, for all T frames (the temporal
conv mixes the frames of one token position, so that is the smallest independent unit). Tensors are
contiguous with rows = (frame, token) flattened; the bottleneck intermediates (z, a, dh, dz) use the
full-N row layout with zero rows for the prefix tokens, which keeps the indexing uniform and lets the
weight-gradient GEMMs run on x and dout without slicing copies.

Cross-thread hand-offs through global memory (a value stored by some threads of a program and loaded
by others) are separated by ``tl.debug_barrier()``. See docs/kernels.md for the derivation and costs.

Constexpr switches:
    UPCAST: convert every loaded value to fp32 (the interpreter computes bf16/fp16 arithmetic wrongly).
    IEEE: fp32 ``tl.dot`` without TF32 (for fp32 inputs when TF32 is off, and under the interpreter).
"""

from __future__ import annotations

import triton
import triton.language as tl

# ACTIVATION codes (fekernels._activations.ACTIVATION_CODES): 0 none, 1 gelu (erf), 2 silu, 3 relu.


@triton.jit
def _activation(h, ACTIVATION: tl.constexpr):
    if ACTIVATION == 1:
        return 0.5 * h * (1.0 + tl.math.erf(h * 0.7071067811865476))
    elif ACTIVATION == 2:
        return h * tl.sigmoid(h)
    elif ACTIVATION == 3:
        return tl.maximum(h, 0.0)
    else:
        return h


@triton.jit
def _activation_grad(h, ACTIVATION: tl.constexpr):
    """d act(h) / dh, in fp32."""
    if ACTIVATION == 1:
        cdf = 0.5 * (1.0 + tl.math.erf(h * 0.7071067811865476))
        return cdf + h * 0.3989422804014327 * tl.exp(-0.5 * h * h)
    elif ACTIVATION == 2:
        sig = tl.sigmoid(h)
        return sig * (1.0 + h * (1.0 - sig))
    elif ACTIVATION == 3:
        return tl.where(h > 0.0, 1.0, 0.0)
    else:
        return tl.full(h.shape, 1.0, tl.float32)


@triton.jit
def _load(ptr, mask, UPCAST: tl.constexpr):
    value = tl.load(ptr, mask=mask, other=0.0)
    if UPCAST:
        value = value.to(tl.float32)
    return value


@triton.jit
def _to_io(value, DTYPE: tl.constexpr, UPCAST: tl.constexpr):
    """Convert fp32 to the I/O dtype with round-to-nearest-even.

    The interpreter's fp32 -> bf16 conversion truncates; under UPCAST the rounding is done by hand on
    the bits so that it matches the GPU (and PyTorch) bit for bit.
    """
    if UPCAST and DTYPE == tl.bfloat16:
        bits = value.to(tl.int32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & -65536
        value = bits.to(tl.float32, bitcast=True)
    return value.to(DTYPE)


@triton.jit
def _as_operand(value, DTYPE: tl.constexpr, UPCAST: tl.constexpr):
    """Round an fp32 value to the I/O dtype, as the reference does between its ops."""
    value = _to_io(value, DTYPE, UPCAST)
    if UPCAST:
        value = value.to(tl.float32)
    return value


@triton.jit
def _dot(a, b, acc, IEEE: tl.constexpr):
    if IEEE:
        return tl.dot(a, b, acc, input_precision="ieee")
    else:
        return tl.dot(a, b, acc)


@triton.jit
def _rows_times_weight_over_c(SRC, rows, mask_n, W, w_stride_c, w_stride_r, C, rr, mask_r,
                              UPCAST: tl.constexpr, IEEE: tl.constexpr,
                              BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """(BLOCK_M, BLOCK_R) fp32 tile of SRC[rows, :C] @ W', where W'[c, r] = W[c * w_stride_c + r * w_stride_r]."""
    offs_c = tl.arange(0, BLOCK_C)
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for c0 in range(0, C, BLOCK_C):
        cc = c0 + offs_c
        mask_c = cc < C
        src = _load(SRC + rows[:, None] * C + cc[None, :], mask_n[:, None] & mask_c[None, :], UPCAST)
        w = _load(W + cc[:, None] * w_stride_c + rr[None, :] * w_stride_r, mask_c[:, None] & mask_r[None, :], UPCAST)
        acc = _dot(src, w, acc, IEEE)
    return acc


@triton.jit
def _rows_times_weight_over_r(SRC, rows, mask_n, W, w_stride_r, w_stride_c, R, cc, mask_c,
                              UPCAST: tl.constexpr, IEEE: tl.constexpr,
                              BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """(BLOCK_M, BLOCK_C) fp32 tile of SRC[rows, :R] @ W', where W'[r, c] = W[r * w_stride_r + c * w_stride_c]."""
    offs_r = tl.arange(0, BLOCK_R)
    acc = tl.zeros((BLOCK_M, BLOCK_C), dtype=tl.float32)
    for r0 in range(0, R, BLOCK_R):
        rr = r0 + offs_r
        mask_r = rr < R
        src = _load(SRC + rows[:, None] * R + rr[None, :], mask_n[:, None] & mask_r[None, :], UPCAST)
        w = _load(W + rr[:, None] * w_stride_r + cc[None, :] * w_stride_c, mask_r[:, None] & mask_c[None, :], UPCAST)
        acc = _dot(src, w, acc, IEEE)
    return acc


@triton.jit
def _conv_frame(Z, frame0, t, T, dilation, rows_n, mask_n, rr, mask_r, N, R, WC, BC,
                HAS_BC: tl.constexpr, K: tl.constexpr, TRANSPOSED: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr, UPCAST: tl.constexpr):
    """One frame of the depthwise temporal conv (or its transpose) for a (BLOCK_M, BLOCK_R) tile, in fp32.

    Forward: h[t] = bc + sum_k wc[:, k] * z[t + (k - K//2) d]. Transposed (the backward of the taps):
    dz[t] = sum_k wc[:, k] * dh[t - (k - K//2) d]. Frames outside 0..T-1 read as zero.
    """
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    if HAS_BC:
        acc += tl.load(BC + rr, mask=mask_r, other=0.0).to(tl.float32)[None, :]
    for k in tl.static_range(K):
        if TRANSPOSED:
            source = t - (k - K // 2) * dilation
        else:
            source = t + (k - K // 2) * dilation
        inside = (source >= 0) & (source < T)
        rows = (frame0 + source).to(tl.int64) * N + rows_n
        tap = tl.load(WC + rr * K + k, mask=mask_r, other=0.0).to(tl.float32)
        value = _load(Z + rows[:, None] * R + rr[None, :], inside & mask_n[:, None] & mask_r[None, :], UPCAST)
        acc += tap[None, :] * value.to(tl.float32)
    return acc


@triton.jit
def fe_adapter_forward_kernel(
    X, WD, BD, WC, BC, WU, BU, OUT, Z, A_SCRATCH,
    N, C, R, T, P, dilation,
    HAS_BD: tl.constexpr, HAS_BC: tl.constexpr, HAS_BU: tl.constexpr,
    K: tl.constexpr, ACTIVATION: tl.constexpr, DTYPE: tl.constexpr,
    UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """out = x + act(conv_t(x Wd^T + bd) + bc) Wu^T + bu on patch tokens, out = x on prefix tokens; saves z."""
    clip = tl.program_id(0)
    offs_n = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_n = offs_n < N
    is_patch = (offs_n >= P)[:, None]
    offs_r = tl.arange(0, BLOCK_R)
    offs_c = tl.arange(0, BLOCK_C)
    frame0 = clip * T
    scratch_rows = (clip * N + offs_n).to(tl.int64)

    # Phase 1: z = x Wd^T + bd for every frame of the block (kept for the conv and for the backward).
    # Frames outer, R blocks inner: the x tile is re-read per R block while it is still in cache.
    for t in range(T):
        rows = (frame0 + t).to(tl.int64) * N + offs_n
        for r0 in range(0, R, BLOCK_R):
            rr = r0 + offs_r
            mask_r = rr < R
            acc = _rows_times_weight_over_c(X, rows, mask_n, WD, 1, C, C, rr, mask_r,
                                            UPCAST, IEEE, BLOCK_M, BLOCK_R, BLOCK_C)
            if HAS_BD:
                acc += tl.load(BD + rr, mask=mask_r, other=0.0).to(tl.float32)[None, :]
            z = _to_io(tl.where(is_patch, acc, 0.0), DTYPE, UPCAST)
            tl.store(Z + rows[:, None] * R + rr[None, :], z, mask=mask_n[:, None] & mask_r[None, :])
    tl.debug_barrier()

    # Phase 2, frame by frame: a = act(conv(z)) into the scratch, then out = x + a Wu^T + bu.
    for t in range(T):
        for r0 in range(0, R, BLOCK_R):
            rr = r0 + offs_r
            mask_r = rr < R
            h = _conv_frame(Z, frame0, t, T, dilation, offs_n, mask_n, rr, mask_r, N, R, WC, BC,
                            HAS_BC, K, False, BLOCK_M, BLOCK_R, UPCAST)
            h = _as_operand(h, DTYPE, UPCAST).to(tl.float32)
            a = _to_io(_activation(h, ACTIVATION), DTYPE, UPCAST)
            tl.store(A_SCRATCH + scratch_rows[:, None] * R + rr[None, :], a, mask=mask_n[:, None] & mask_r[None, :])
        tl.debug_barrier()
        rows = (frame0 + t).to(tl.int64) * N + offs_n
        for c0 in range(0, C, BLOCK_C):
            cc = c0 + offs_c
            mask_c = cc < C
            acc = _rows_times_weight_over_r(A_SCRATCH, scratch_rows, mask_n, WU, 1, R, R, cc, mask_c,
                                            UPCAST, IEEE, BLOCK_M, BLOCK_R, BLOCK_C)
            if HAS_BU:
                acc += tl.load(BU + cc, mask=mask_c, other=0.0).to(tl.float32)[None, :]
            tile = mask_n[:, None] & mask_c[None, :]
            x = tl.load(X + rows[:, None] * C + cc[None, :], mask=tile, other=0.0)
            update = _as_operand(acc, DTYPE, UPCAST).to(tl.float32)
            out = _to_io(x.to(tl.float32) + tl.where(is_patch, update, 0.0), DTYPE, UPCAST)
            tl.store(OUT + rows[:, None] * C + cc[None, :], out, mask=tile)
        tl.debug_barrier()


@triton.jit
def fe_adapter_backward_kernel(
    DOUT, Z, WD, WC, BC, WU, DX, A, DH, DZ, DWC_PART, DBC_PART,
    N, C, R, T, P, dilation,
    HAS_BC: tl.constexpr, K: tl.constexpr, K_PAD: tl.constexpr, ACTIVATION: tl.constexpr, DTYPE: tl.constexpr,
    NEED_DX: tl.constexpr, NEED_DZ: tl.constexpr, NEED_WEIGHT_GRADS: tl.constexpr,
    UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Gradients through the adapter: dh (and a, dWc/dbc partials), then dz and dx = dout + dz Wd.

    Phase 1 recomputes h and a from the saved z: da = dout Wu, dh = da * act'(h). Phase 2 applies the
    transposed conv, dz[t] = sum_k wc[:, k] dh[t - (k - K//2) d], and the down-projection's backward.
    The weight-gradient GEMMs over all tokens (a^T dout, dz^T x) are left to the launcher.
    """
    clip = tl.program_id(0)
    block_m = tl.program_id(1)
    offs_n = block_m * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_n = offs_n < N
    is_patch = (offs_n >= P)[:, None]
    offs_r = tl.arange(0, BLOCK_R)
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, K_PAD)
    frame0 = clip * T
    program = clip * tl.num_programs(1) + block_m

    # Phase 1, frame by frame (R blocks inner, so the dout tile is re-read from cache): dh, a, and this
    # program's (frame, R) share of dWc and dbc, written once to its own slot of the partial buffers.
    for t in range(T):
        rows = (frame0 + t).to(tl.int64) * N + offs_n
        for r0 in range(0, R, BLOCK_R):
            rr = r0 + offs_r
            mask_r = rr < R
            tile_r = mask_n[:, None] & mask_r[None, :]
            da = _rows_times_weight_over_c(DOUT, rows, mask_n, WU, R, 1, C, rr, mask_r,
                                           UPCAST, IEEE, BLOCK_M, BLOCK_R, BLOCK_C)
            da = _as_operand(da, DTYPE, UPCAST).to(tl.float32)
            h = _conv_frame(Z, frame0, t, T, dilation, offs_n, mask_n, rr, mask_r, N, R, WC, BC,
                            HAS_BC, K, False, BLOCK_M, BLOCK_R, UPCAST)
            h = _as_operand(h, DTYPE, UPCAST).to(tl.float32)
            dh = tl.where(is_patch, da * _activation_grad(h, ACTIVATION), 0.0)
            if NEED_DZ:
                tl.store(DH + rows[:, None] * R + rr[None, :], dh, mask=tile_r)
            if NEED_WEIGHT_GRADS:
                a = tl.where(is_patch, _activation(h, ACTIVATION), 0.0)
                tl.store(A + rows[:, None] * R + rr[None, :], _to_io(a, DTYPE, UPCAST), mask=tile_r)
                dwc = tl.zeros((BLOCK_R, K_PAD), dtype=tl.float32)
                for k in tl.static_range(K):
                    source = t + (k - K // 2) * dilation
                    inside = (source >= 0) & (source < T)
                    src_rows = (frame0 + source).to(tl.int64) * N + offs_n
                    z = _load(Z + src_rows[:, None] * R + rr[None, :], inside & tile_r, UPCAST).to(tl.float32)
                    dwc += tl.where(offs_k[None, :] == k, tl.sum(dh * z, axis=0)[:, None], 0.0)
                part = (program.to(tl.int64) * T + t) * R + rr
                tl.store(DWC_PART + part[:, None] * K + offs_k[None, :], dwc,
                         mask=mask_r[:, None] & (offs_k[None, :] < K))
                tl.store(DBC_PART + part, tl.sum(dh, axis=0), mask=mask_r)
    tl.debug_barrier()

    if NEED_DZ:
        # Phase 2, frame by frame: dz by the transposed conv, then dx = dout + dz Wd on patch tokens.
        for t in range(T):
            rows = (frame0 + t).to(tl.int64) * N + offs_n
            for r0 in range(0, R, BLOCK_R):
                rr = r0 + offs_r
                mask_r = rr < R
                dz = _conv_frame(DH, frame0, t, T, dilation, offs_n, mask_n, rr, mask_r, N, R, WC, BC,
                                 False, K, True, BLOCK_M, BLOCK_R, False)
                tl.store(DZ + rows[:, None] * R + rr[None, :], _to_io(dz, DTYPE, UPCAST),
                         mask=mask_n[:, None] & mask_r[None, :])
            if NEED_DX:
                tl.debug_barrier()
                for c0 in range(0, C, BLOCK_C):
                    cc = c0 + offs_c
                    mask_c = cc < C
                    acc = _rows_times_weight_over_r(DZ, rows, mask_n, WD, C, 1, R, cc, mask_c,
                                                    UPCAST, IEEE, BLOCK_M, BLOCK_R, BLOCK_C)
                    tile = mask_n[:, None] & mask_c[None, :]
                    dout = tl.load(DOUT + rows[:, None] * C + cc[None, :], mask=tile, other=0.0).to(tl.float32)
                    update = _as_operand(acc, DTYPE, UPCAST).to(tl.float32)
                    dx = dout + tl.where(is_patch, update, 0.0)
                    tl.store(DX + rows[:, None] * C + cc[None, :], _to_io(dx, DTYPE, UPCAST), mask=tile)

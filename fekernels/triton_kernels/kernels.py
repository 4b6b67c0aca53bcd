"""GEMM-shaped Triton kernels of the FE-Adapter op.

Every kernel tiles the M = B*T*N rows of the op, row m = (clip, frame, token) flattened, so the grid has
ceil(M / BLOCK_M) x ceil(columns / BLOCK_N) full tensor-core tiles whatever the batch size. The frame of
row m is (m // N) % T and its token m % N; tokens below P (cls, registers) are prefix rows.

The temporal depthwise conv never gets its own pass: it is applied while an operand is loaded. Tap k of
row m is row m + (k - K//2) * d * N of the same token, read as zero where its frame leaves 0..T-1, so a
(BLOCK_M, BLOCK_K) tile of conv(z) costs K masked loads of z (neighbouring rows, mostly L2 hits) and K
FMAs per element. Biases, activation, residual and the prefix pass-through are epilogues.

Kernels (launchers and buffers in ``launch.py``, the byte counts in ``fekernels/cost.py``):
    forward_up_kernel:  out = x + act(conv(z)) Wu^T + bu          GEMM over R, conv(z) formed on load
    grad_h_kernel:      da = dout Wu, dh = da * act'(h), a = act(h)  GEMM over C, h recomputed from z in
                        the epilogue, with this row tile's fp32 partial sums of dWc, dbc (and dbu)
    grad_x_kernel:      dx = dout + dz Wd                         GEMM over R, dz = conv^T(dh) formed on load;
                        the first column of tiles also stores dz and its dbd partials
    grad_z_kernel:      dz = conv^T(dh) alone, when dx is not needed but dWd is

Constexpr switches:
    UPCAST: convert every loaded value to fp32 (the interpreter computes bf16/fp16 arithmetic wrongly).
    IEEE: fp32 ``tl.dot`` without TF32 (for fp32 inputs when TF32 is off, and under the interpreter).
"""

from __future__ import annotations

import triton
import triton.language as tl

# ACTIVATION codes (fekernels._activations.ACTIVATION_CODES): 0 none, 1 gelu (erf), 2 silu, 3 relu. Any other
# code fails the compile (tl.static_assert), never falls through to the identity.


@triton.jit
def _activation(h, ACTIVATION: tl.constexpr):
    if ACTIVATION == 0:
        return h
    elif ACTIVATION == 1:
        return 0.5 * h * (1.0 + tl.math.erf(h * 0.7071067811865476))
    elif ACTIVATION == 2:
        return h * tl.sigmoid(h)
    elif ACTIVATION == 3:
        return tl.maximum(h, 0.0)
    else:
        tl.static_assert(False, "unknown ACTIVATION code (see fekernels._activations.ACTIVATION_CODES)")


@triton.jit
def _activation_grad(h, ACTIVATION: tl.constexpr):
    """d act(h) / dh, in fp32."""
    if ACTIVATION == 0:
        return tl.full(h.shape, 1.0, tl.float32)
    elif ACTIVATION == 1:
        cdf = 0.5 * (1.0 + tl.math.erf(h * 0.7071067811865476))
        return cdf + h * 0.3989422804014327 * tl.exp(-0.5 * h * h)
    elif ACTIVATION == 2:
        sig = tl.sigmoid(h)
        return sig * (1.0 + h * (1.0 - sig))
    elif ACTIVATION == 3:
        return tl.where(h > 0.0, 1.0, 0.0)
    else:
        tl.static_assert(False, "unknown ACTIVATION code (see fekernels._activations.ACTIVATION_CODES)")


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
    """Round an fp32 value to the I/O dtype, as the reference does between its ops (kept fp32 under UPCAST)."""
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
def _tile(M, COLUMNS, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(row tile, column tile) of this program, in grouped order: GROUP_M row tiles sweep the columns
    together, so the operand tiles they share stay in L2."""
    pid = tl.program_id(0)
    tiles_n = tl.cdiv(COLUMNS, BLOCK_N)
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    group_size = tl.minimum(tl.cdiv(M, BLOCK_M) - first_m, GROUP_M)
    return first_m + (pid % per_group) % group_size, (pid % per_group) // group_size


@triton.jit
def _rows(tile_m, M, N, T, P, BLOCK_M: tl.constexpr):
    """The tile's row indices (int64), which of them exist, their frame, and which are patch (not prefix) rows."""
    offs_m = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    return offs_m.to(tl.int64), offs_m < M, (offs_m // N) % T, (offs_m % N) >= P


@triton.jit
def _conv_tile(SRC, rows, inside, frame, rr, mask_r, N, R, T, dilation, WC, BC,
               HAS_BC: tl.constexpr, K: tl.constexpr, TRANSPOSED: tl.constexpr, UPCAST: tl.constexpr,
               BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr):
    """(BLOCK_M, BLOCK_R) fp32 tile of the depthwise temporal conv of SRC, an (M, R) matrix.

    Forward: bc + sum_k wc[:, k] * src[m + (k - K//2) d N]. Transposed (the conv's backward):
    sum_k wc[:, k] * src[m - (k - K//2) d N]. A tap whose frame leaves 0..T-1 reads zero.
    """
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    if HAS_BC:
        acc += tl.load(BC + rr, mask=mask_r, other=0.0).to(tl.float32)[None, :]
    for k in tl.static_range(K):
        if TRANSPOSED:
            shift = (K // 2 - k) * dilation
        else:
            shift = (k - K // 2) * dilation
        source = frame + shift
        valid = inside & (source >= 0) & (source < T)
        tap = tl.load(WC + rr * K + k, mask=mask_r, other=0.0).to(tl.float32)
        value = _load(SRC + (rows + shift * N)[:, None] * R + rr[None, :], valid[:, None] & mask_r[None, :], UPCAST)
        acc += tap[None, :] * value.to(tl.float32)
    return acc


@triton.jit
def forward_up_kernel(
    X, Z, WC, BC, WU, BU, OUT,
    M, N, C, R, T, P, dilation,
    HAS_BC: tl.constexpr, HAS_BU: tl.constexpr, K: tl.constexpr, ACTIVATION: tl.constexpr,
    DTYPE: tl.constexpr, UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """out = x + act(conv(z) + bc) Wu^T + bu on patch rows, out = x on prefix rows (tile: rows x C)."""
    tile_m, tile_n = _tile(M, C, BLOCK_M, BLOCK_N, GROUP_M)
    rows, inside, frame, patch = _rows(tile_m, M, N, T, P, BLOCK_M)
    cc = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_c = cc < C
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for r0 in range(0, R, BLOCK_K):
        rr = r0 + tl.arange(0, BLOCK_K)
        mask_r = rr < R
        h = _conv_tile(Z, rows, inside, frame, rr, mask_r, N, R, T, dilation, WC, BC,
                       HAS_BC, K, False, UPCAST, BLOCK_M, BLOCK_K)
        h = _as_operand(h, DTYPE, UPCAST).to(tl.float32)
        a = _as_operand(_activation(h, ACTIVATION), DTYPE, UPCAST)
        w_up_t = _load(WU + cc[None, :] * R + rr[:, None], mask_r[:, None] & mask_c[None, :], UPCAST)
        acc = _dot(a, w_up_t, acc, IEEE)
    if HAS_BU:
        acc += tl.load(BU + cc, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    tile = inside[:, None] & mask_c[None, :]
    offsets = rows[:, None] * C + cc[None, :]
    x = tl.load(X + offsets, mask=tile, other=0.0)
    update = _as_operand(acc, DTYPE, UPCAST).to(tl.float32)
    out = _to_io(x.to(tl.float32) + update, DTYPE, UPCAST)
    tl.store(OUT + offsets, tl.where(patch[:, None], out, x), mask=tile)


@triton.jit
def grad_h_kernel(
    DOUT, Z, WC, BC, WU, DH, A, DWC_PART, DBC_PART, DBU_PART,
    M, N, C, R, T, P, dilation,
    HAS_BC: tl.constexpr, K: tl.constexpr, ACTIVATION: tl.constexpr, DTYPE: tl.constexpr,
    NEED_DH: tl.constexpr, NEED_WEIGHT_GRADS: tl.constexpr, UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """da = dout Wu, then dh = da * act'(h) with h recomputed from z (tile: rows x R).

    Stores dh (for the transposed conv) and a = act(h) (for dWu = dout^T a), both zero on prefix rows, and
    writes this row tile's fp32 column sums: dWc[:, k] += dh * z[tap k], dbc += dh and, from the first
    column of tiles, dbu += dout. Each partial slot has one writer: the sums are deterministic.
    """
    tile_m, tile_n = _tile(M, R, BLOCK_M, BLOCK_N, GROUP_M)
    rows, inside, frame, patch = _rows(tile_m, M, N, T, P, BLOCK_M)
    rr = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_r = rr < R
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for c0 in range(0, C, BLOCK_K):
        cc = c0 + tl.arange(0, BLOCK_K)
        mask_c = cc < C
        dout = _load(DOUT + rows[:, None] * C + cc[None, :], inside[:, None] & mask_c[None, :], UPCAST)
        w_up = _load(WU + cc[:, None] * R + rr[None, :], mask_c[:, None] & mask_r[None, :], UPCAST)
        acc = _dot(dout, w_up, acc, IEEE)
        if NEED_WEIGHT_GRADS:
            if tile_n == 0:
                dbu = tl.sum(tl.where(patch[:, None], dout.to(tl.float32), 0.0), axis=0)
                tl.store(DBU_PART + tile_m.to(tl.int64) * C + cc, dbu, mask=mask_c)
    da = _as_operand(acc, DTYPE, UPCAST).to(tl.float32)
    h = _conv_tile(Z, rows, inside, frame, rr, mask_r, N, R, T, dilation, WC, BC,
                   HAS_BC, K, False, UPCAST, BLOCK_M, BLOCK_N)
    h = _as_operand(h, DTYPE, UPCAST).to(tl.float32)
    dh = tl.where(patch[:, None], da * _activation_grad(h, ACTIVATION), 0.0)
    dh = _as_operand(dh, DTYPE, UPCAST).to(tl.float32)
    tile = inside[:, None] & mask_r[None, :]
    offsets = rows[:, None] * R + rr[None, :]
    if NEED_DH:
        tl.store(DH + offsets, _to_io(dh, DTYPE, UPCAST), mask=tile)
    if NEED_WEIGHT_GRADS:
        a = tl.where(patch[:, None], _activation(h, ACTIVATION), 0.0)
        tl.store(A + offsets, _to_io(a, DTYPE, UPCAST), mask=tile)
        slot = tile_m.to(tl.int64) * R + rr
        tl.store(DBC_PART + slot, tl.sum(dh, axis=0), mask=mask_r)
        for k in tl.static_range(K):
            shift = (k - K // 2) * dilation
            source = frame + shift
            valid = inside & (source >= 0) & (source < T)
            z = _load(Z + (rows + shift * N)[:, None] * R + rr[None, :], valid[:, None] & mask_r[None, :], UPCAST)
            tl.store(DWC_PART + slot * K + k, tl.sum(dh * z.to(tl.float32), axis=0), mask=mask_r)


@triton.jit
def _store_dz(DZ, DBD_PART, dz, tile_m, rows, inside, rr, mask_r, R):
    """Store a dz tile (for dWd = dz^T x) and its fp32 column sums (this row tile's share of dbd)."""
    tl.store(DZ + rows[:, None] * R + rr[None, :], dz.to(DZ.dtype.element_ty), mask=inside[:, None] & mask_r[None, :])
    tl.store(DBD_PART + tile_m.to(tl.int64) * R + rr, tl.sum(dz.to(tl.float32), axis=0), mask=mask_r)


@triton.jit
def grad_x_kernel(
    DOUT, DH, WC, WD, DX, DZ, DBD_PART,
    M, N, C, R, T, P, dilation,
    K: tl.constexpr, DTYPE: tl.constexpr, STORE_DZ: tl.constexpr, UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """dx = dout + dz Wd on patch rows, dx = dout on prefix rows, with dz = conv^T(dh) (tile: rows x C).

    dz is zero on prefix rows because dh is and the taps never leave a token. With STORE_DZ the programs of
    the first column of tiles also store dz and its dbd partials, so dz is formed once per element for them.
    """
    tile_m, tile_n = _tile(M, C, BLOCK_M, BLOCK_N, GROUP_M)
    rows, inside, frame, patch = _rows(tile_m, M, N, T, P, BLOCK_M)
    cc = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_c = cc < C
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for r0 in range(0, R, BLOCK_K):
        rr = r0 + tl.arange(0, BLOCK_K)
        mask_r = rr < R
        dz = _conv_tile(DH, rows, inside, frame, rr, mask_r, N, R, T, dilation, WC, WC,
                        False, K, True, UPCAST, BLOCK_M, BLOCK_K)
        dz = _as_operand(dz, DTYPE, UPCAST)
        if STORE_DZ:
            if tile_n == 0:
                _store_dz(DZ, DBD_PART, dz, tile_m, rows, inside, rr, mask_r, R)
        w_down = _load(WD + rr[:, None] * C + cc[None, :], mask_r[:, None] & mask_c[None, :], UPCAST)
        acc = _dot(dz, w_down, acc, IEEE)
    tile = inside[:, None] & mask_c[None, :]
    offsets = rows[:, None] * C + cc[None, :]
    dout = tl.load(DOUT + offsets, mask=tile, other=0.0)
    update = _as_operand(acc, DTYPE, UPCAST).to(tl.float32)
    dx = _to_io(dout.to(tl.float32) + update, DTYPE, UPCAST)
    tl.store(DX + offsets, tl.where(patch[:, None], dx, dout), mask=tile)


@triton.jit
def grad_z_kernel(
    DH, WC, DZ, DBD_PART,
    M, N, R, T, dilation,
    K: tl.constexpr, DTYPE: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr,
):
    """dz = conv^T(dh) and its dbd partials (tile: rows x R), for a backward that needs dWd but not dx."""
    tile_m, tile_n = _tile(M, R, BLOCK_M, BLOCK_N, GROUP_M)
    rows, inside, frame, _ = _rows(tile_m, M, N, T, 0, BLOCK_M)
    rr = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_r = rr < R
    dz = _conv_tile(DH, rows, inside, frame, rr, mask_r, N, R, T, dilation, WC, WC,
                    False, K, True, UPCAST, BLOCK_M, BLOCK_N)
    _store_dz(DZ, DBD_PART, _as_operand(dz, DTYPE, UPCAST), tile_m, rows, inside, rr, mask_r, R)

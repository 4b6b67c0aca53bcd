"""GEMM-shaped Triton kernels of the FE-Adapter op.

Every kernel tiles the M = B*T*N rows of the op, row m = (clip, frame, token) flattened (its frame is
(m // N) % T, its token m % N; tokens below P, cls and registers, are prefix rows), so the grid has full
tensor-core tiles whatever the batch size. Every main loop is a plain GEMM: two operand tiles loaded, one
``tl.dot``, nothing else, so that the loads pipeline and the wgmma instructions issue back to back.

The temporal depthwise conv is done in epilogues, once per tile, by kernels whose row tiles are
**clip-major**: a tile holds all T frames of TOK = BLOCK_M // T consecutive tokens of one clip, so every tap
of every row (row m + (k - K//2) * d * N, the same token in another frame) lies in the tile itself. The
epilogue stores the tile's values, waits for the whole program (``tl.debug_barrier``), and reads the taps
back (L1/L2 hits, written a moment before by the same program). Tiles of the other kernels take rows in
order. Biases, activation, residual, prefix pass-through and per-tile partial sums are epilogues too.

Kernels (launchers and buffers in ``launch.py``, the byte counts in ``fekernels/cost.py``):
    forward_down_kernel: z = x Wd^T + bd, a = act(conv(z) + bc)   GEMM over C, clip-major; conv in the epilogue
    forward_up_kernel:   out = x + a Wu^T + bu                     GEMM over R
    grad_h_kernel:       da = dout Wu, dh = da * act'(h), a = act(h), dz = conv^T(dh)
                         GEMM over C, clip-major: h from the taps of z and dz from the taps of dh in the
                         epilogue, with the tile's fp32 partial sums of dWc, dbc, dbd, and of dbu from a
                         second loop over dout after the main loop
    grad_x_kernel:       dx = dout + dz Wd                         GEMM over R
    reduce_partials_kernel: the per-row-tile fp32 partials summed in a fixed order into dWc, dbc, dbd, dbu

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
def _tile(tiles_m, COLUMNS, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(row tile, column tile) of this program, in grouped order: GROUP_M row tiles sweep the columns
    together, so the operand tiles they share stay in L2."""
    pid = tl.program_id(0)
    tiles_n = tl.cdiv(COLUMNS, BLOCK_N)
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    group_size = tl.minimum(tiles_m - first_m, GROUP_M)
    return first_m + (pid % per_group) % group_size, (pid % per_group) // group_size


@triton.jit
def _rows(tile_m, M, N, P, BLOCK_M: tl.constexpr):
    """A row-order tile's row indices (int64), which of them exist, and which are patch (not prefix) rows."""
    offs_m = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    return offs_m.to(tl.int64), offs_m < M, (offs_m % N) >= P


@triton.jit
def _clip_tiles(M, N, T, BLOCK_M: tl.constexpr):
    """The number of clip-major row tiles: B clips x ceil(N / TOK) token groups (TOK = BLOCK_M // T)."""
    return (M // (T * N)) * tl.cdiv(N, BLOCK_M // T)


@triton.jit
def _clip_rows(tile_m, N, T, P, BLOCK_M: tl.constexpr):
    """A clip-major tile: row i is frame i // TOK of token first + i % TOK of one clip (TOK = BLOCK_M // T).
    Returns the row indices (int64), which exist, their frame, and which are patch rows."""
    tokens = BLOCK_M // T
    groups = tl.cdiv(N, tokens)
    clip = tile_m // groups
    first = (tile_m % groups) * tokens
    i = tl.arange(0, BLOCK_M)
    frame = i // tokens
    token = first + i % tokens
    rows = ((clip * T + frame) * N + token).to(tl.int64)
    return rows, (frame < T) & (token < N), frame, token >= P


@triton.jit
def _conv_tile(SRC, rows, inside, frame, rr, mask_r, N, R, T, dilation, WC, BC,
               HAS_BC: tl.constexpr, K: tl.constexpr, TRANSPOSED: tl.constexpr, UPCAST: tl.constexpr,
               BLOCK_M: tl.constexpr, BLOCK_R: tl.constexpr):
    """(BLOCK_M, BLOCK_R) fp32 tile of the depthwise temporal conv of SRC, an (M, R) matrix, for a clip-major
    tile (every tap it reads was written by this program before its barrier).

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
def _column_sum_of_dout(DOUT, DBU_PART, slot, rows, inside, patch, C, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """This row tile's fp32 column sums of dout over its patch rows (its share of dbu), in a loop of its own
    after the main loop (inside it the sum would stall every wgmma) and after the accumulator is stored."""
    for c0 in range(0, C, BLOCK_K):
        cc = c0 + tl.arange(0, BLOCK_K)
        mask_c = cc < C
        dout = tl.load(DOUT + rows[:, None] * C + cc[None, :], mask=(inside & patch)[:, None] & mask_c[None, :],
                       other=0.0)
        tl.store(DBU_PART + slot + cc, tl.sum(dout.to(tl.float32), axis=0), mask=mask_c)


@triton.jit
def forward_down_kernel(
    X, WD, BD, WC, BC, Z, A,
    M, N, C, R, T, P, dilation,
    HAS_BD: tl.constexpr, HAS_BC: tl.constexpr, K: tl.constexpr, ACTIVATION: tl.constexpr,
    DTYPE: tl.constexpr, UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """z = x Wd^T + bd on every row (prefix too: the backward reads it), then a = act(conv(z) + bc)
    (clip-major tile: rows x R)."""
    tile_m, tile_n = _tile(_clip_tiles(M, N, T, BLOCK_M), R, BLOCK_N, GROUP_M)
    rows, inside, frame, _ = _clip_rows(tile_m, N, T, P, BLOCK_M)
    rr = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_r = rr < R
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if HAS_BD:  # the bias starts the sum (added after the loop, it is held beside acc: forward_up's spilled so)
        acc += tl.load(BD + rr, mask=mask_r, other=0.0).to(tl.float32)[None, :]
    for c0 in range(0, C, BLOCK_K):
        cc = c0 + tl.arange(0, BLOCK_K)
        mask_c = cc < C
        x = _load(X + rows[:, None] * C + cc[None, :], inside[:, None] & mask_c[None, :], UPCAST)
        w_down_t = _load(WD + rr[None, :] * C + cc[:, None], mask_c[:, None] & mask_r[None, :], UPCAST)
        acc = _dot(x, w_down_t, acc, IEEE)
    tile = inside[:, None] & mask_r[None, :]
    offsets = rows[:, None] * R + rr[None, :]
    tl.store(Z + offsets, _to_io(acc, DTYPE, UPCAST), mask=tile)
    tl.debug_barrier()  # the taps below read z written by other threads of this program
    # The conv works on SLICE columns at a time: the K taps of a (BLOCK_M, SLICE) slice stay in registers, where
    # those of a whole 128 x 128 tile spill (offline sm_90a compiles, docs/kernels.md).
    SLICE: tl.constexpr = 32
    tl.static_assert(BLOCK_N % SLICE == 0)
    for n0 in range(0, BLOCK_N, SLICE):
        rc = tile_n * BLOCK_N + n0 + tl.arange(0, SLICE)
        mask_rc = rc < R
        h = _conv_tile(Z, rows, inside, frame, rc, mask_rc, N, R, T, dilation, WC, BC,
                       HAS_BC, K, False, UPCAST, BLOCK_M, SLICE)
        h = _as_operand(h, DTYPE, UPCAST).to(tl.float32)
        tl.store(A + rows[:, None] * R + rc[None, :], _to_io(_activation(h, ACTIVATION), DTYPE, UPCAST),
                 mask=inside[:, None] & mask_rc[None, :])


@triton.jit
def forward_up_kernel(
    X, A, WU, BU, OUT,
    M, N, C, R, T, P,
    HAS_BU: tl.constexpr, DTYPE: tl.constexpr, UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """out = x + a Wu^T + bu on patch rows, out = x on prefix rows (tile: rows x C)."""
    tile_m, tile_n = _tile(tl.cdiv(M, BLOCK_M), C, BLOCK_N, GROUP_M)
    rows, inside, patch = _rows(tile_m, M, N, P, BLOCK_M)
    cc = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_c = cc < C
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if HAS_BU:  # the bias starts the sum: held in the epilogue beside acc and x, it spilled 128x256 tiles
        acc += tl.load(BU + cc, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    for r0 in range(0, R, BLOCK_K):
        rr = r0 + tl.arange(0, BLOCK_K)
        mask_r = rr < R
        a = _load(A + rows[:, None] * R + rr[None, :], inside[:, None] & mask_r[None, :], UPCAST)
        w_up_t = _load(WU + cc[None, :] * R + rr[:, None], mask_r[:, None] & mask_c[None, :], UPCAST)
        acc = _dot(a, w_up_t, acc, IEEE)
    tile = inside[:, None] & mask_c[None, :]
    offsets = rows[:, None] * C + cc[None, :]
    x = tl.load(X + offsets, mask=tile, other=0.0)
    update = _as_operand(acc, DTYPE, UPCAST).to(tl.float32)
    out = _to_io(x.to(tl.float32) + update, DTYPE, UPCAST)
    tl.store(OUT + offsets, tl.where(patch[:, None], out, x), mask=tile)


@triton.jit
def grad_h_kernel(
    DOUT, Z, WC, BC, WU, DH, A, DZ, DWC_PART, DBC_PART, DBD_PART, DBU_PART,
    M, N, C, R, T, P, dilation, PART_STRIDE,
    HAS_BC: tl.constexpr, K: tl.constexpr, ACTIVATION: tl.constexpr, DTYPE: tl.constexpr,
    NEED_DZ: tl.constexpr, NEED_WEIGHT_GRADS: tl.constexpr, UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """da = dout Wu, then dh = da * act'(h) with h recomputed from the taps of z, then dz = conv^T(dh) from
    the taps of dh (clip-major tile: rows x R).

    With NEED_WEIGHT_GRADS it stores a = act(h) (for dWu = dout^T a, zero on prefix rows) and writes the tile's
    fp32 column sums of dh * z[tap k] (dWc) and dh (dbc), and the first column of tiles sums dout (dbu); with
    NEED_DZ it stores dh (read back for the taps), dz (for dx and dWd) and dz's column sums (dbd). Sums go
    into row ``tile_m`` of the partial buffers (row stride PART_STRIDE); each slot has exactly one writer, so
    nothing needs zeroing and the sums are deterministic.
    """
    tile_m, tile_n = _tile(_clip_tiles(M, N, T, BLOCK_M), R, BLOCK_N, GROUP_M)
    rows, inside, frame, patch = _clip_rows(tile_m, N, T, P, BLOCK_M)
    rr = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_r = rr < R
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for c0 in range(0, C, BLOCK_K):
        cc = c0 + tl.arange(0, BLOCK_K)
        mask_c = cc < C
        dout = _load(DOUT + rows[:, None] * C + cc[None, :], inside[:, None] & mask_c[None, :], UPCAST)
        w_up = _load(WU + cc[:, None] * R + rr[None, :], mask_c[:, None] & mask_r[None, :], UPCAST)
        acc = _dot(dout, w_up, acc, IEEE)
    slot = tile_m.to(tl.int64) * PART_STRIDE
    # da goes through memory (rounded to the I/O dtype, as the reference rounds it), so that the epilogue can
    # work on SLICE columns at a time like forward_down's: through DZ, which the transposed conv overwrites only
    # after the next barrier, or DH when dz is not wanted (then dh is not stored).
    if NEED_DZ:
        DA = DZ
    else:
        DA = DH
    tl.store(DA + rows[:, None] * R + rr[None, :], _to_io(acc, DTYPE, UPCAST), mask=inside[:, None] & mask_r[None, :])
    if NEED_WEIGHT_GRADS:  # after da's store, when acc is dead (held through this loop, 128x256 tiles took 255 regs)
        if tile_n == 0:
            _column_sum_of_dout(DOUT, DBU_PART, slot, rows, inside, patch, C, BLOCK_M, BLOCK_K)
    tl.debug_barrier()  # the slices below read da written by other threads of this program
    # Long kernels hold more taps at once: half the slice from K = 7 up (else K = 9 spills, docs/kernels.md).
    SLICE: tl.constexpr = 32 if K <= 5 else 16
    tl.static_assert(BLOCK_N % SLICE == 0)
    for n0 in range(0, BLOCK_N, SLICE):
        rc = tile_n * BLOCK_N + n0 + tl.arange(0, SLICE)
        mask_rc = rc < R
        tile = inside[:, None] & mask_rc[None, :]
        offsets = rows[:, None] * R + rc[None, :]
        da = _load(DA + offsets, tile, UPCAST).to(tl.float32)
        h = _conv_tile(Z, rows, inside, frame, rc, mask_rc, N, R, T, dilation, WC, BC,
                       HAS_BC, K, False, UPCAST, BLOCK_M, SLICE)
        h = _as_operand(h, DTYPE, UPCAST).to(tl.float32)
        dh = tl.where(patch[:, None], da * _activation_grad(h, ACTIVATION), 0.0)
        dh = _as_operand(dh, DTYPE, UPCAST).to(tl.float32)
        if NEED_DZ:
            tl.store(DH + offsets, _to_io(dh, DTYPE, UPCAST), mask=tile)
        if NEED_WEIGHT_GRADS:
            a = tl.where(patch[:, None], _activation(h, ACTIVATION), 0.0)
            tl.store(A + offsets, _to_io(a, DTYPE, UPCAST), mask=tile)
            tl.store(DBC_PART + slot + rc, tl.sum(dh, axis=0), mask=mask_rc)
            for k in tl.static_range(K):
                shift = (k - K // 2) * dilation
                source = frame + shift
                valid = inside & (source >= 0) & (source < T)
                z = _load(Z + (rows + shift * N)[:, None] * R + rc[None, :], valid[:, None] & mask_rc[None, :],
                          UPCAST)
                tl.store(DWC_PART + slot + rc * K + k, tl.sum(dh * z.to(tl.float32), axis=0), mask=mask_rc)
    if NEED_DZ:
        tl.debug_barrier()  # the taps below read dh written by other threads of this program
        for n0 in range(0, BLOCK_N, SLICE):
            rc = tile_n * BLOCK_N + n0 + tl.arange(0, SLICE)
            mask_rc = rc < R
            dz = _conv_tile(DH, rows, inside, frame, rc, mask_rc, N, R, T, dilation, WC, WC,
                            False, K, True, UPCAST, BLOCK_M, SLICE)
            dz = _as_operand(dz, DTYPE, UPCAST).to(tl.float32)
            tl.store(DZ + rows[:, None] * R + rc[None, :], _to_io(dz, DTYPE, UPCAST),
                     mask=inside[:, None] & mask_rc[None, :])
            tl.store(DBD_PART + slot + rc, tl.sum(dz, axis=0), mask=mask_rc)


@triton.jit
def grad_x_kernel(
    DOUT, DZ, WD, DX,
    M, N, C, R, T, P,
    DTYPE: tl.constexpr, UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """dx = dout + dz Wd on patch rows, dx = dout on prefix rows (tile: rows x C). (dbu is grad_h's: summed
    here from the epilogue's dout tile, ptxas serialised the wgmma instructions, C7514.)"""
    tile_m, tile_n = _tile(tl.cdiv(M, BLOCK_M), C, BLOCK_N, GROUP_M)
    rows, inside, patch = _rows(tile_m, M, N, P, BLOCK_M)
    cc = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_c = cc < C
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for r0 in range(0, R, BLOCK_K):
        rr = r0 + tl.arange(0, BLOCK_K)
        mask_r = rr < R
        dz = _load(DZ + rows[:, None] * R + rr[None, :], inside[:, None] & mask_r[None, :], UPCAST)
        w_down = _load(WD + rr[:, None] * C + cc[None, :], mask_r[:, None] & mask_c[None, :], UPCAST)
        acc = _dot(dz, w_down, acc, IEEE)
    tile = inside[:, None] & mask_c[None, :]
    offsets = rows[:, None] * C + cc[None, :]
    dout = tl.load(DOUT + offsets, mask=tile, other=0.0)
    update = _as_operand(acc, DTYPE, UPCAST).to(tl.float32)
    dx = _to_io(dout.to(tl.float32) + update, DTYPE, UPCAST)
    tl.store(DX + offsets, tl.where(patch[:, None], dx, dout), mask=tile)


@triton.jit
def _column_sums(PART, PART_STRIDE, OUT, width, slots, block, DTYPE: tl.constexpr, UPCAST: tl.constexpr,
                 BLOCK_S: tl.constexpr, BLOCK_W: tl.constexpr):
    """OUT[j] = sum over rows s < slots of PART[s, j] for this block of columns j < width, in a fixed order:
    BLOCK_S rows at a time (a fixed reduction tree), those sums added in row order."""
    cols = block * BLOCK_W + tl.arange(0, BLOCK_W)
    mask = cols < width
    acc = tl.zeros((BLOCK_W,), dtype=tl.float32)
    for s0 in range(0, slots, BLOCK_S):
        ss = s0 + tl.arange(0, BLOCK_S)
        tile = tl.load(PART + ss.to(tl.int64)[:, None] * PART_STRIDE + cols[None, :],
                       mask=(ss < slots)[:, None] & mask[None, :], other=0.0)
        acc += tl.sum(tile, axis=0)
    tl.store(OUT + cols, _to_io(acc, DTYPE, UPCAST), mask=mask)


@triton.jit
def reduce_partials_kernel(
    PART, DWC, DBC, DBD, DBU,
    PART_STRIDE, R, C, SLOTS, OFFSET_DBD, OFFSET_DBU,
    K: tl.constexpr, WEIGHTS: tl.constexpr, DOWN: tl.constexpr, DTYPE: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_S: tl.constexpr, BLOCK_W: tl.constexpr,
):
    """dWc, dbc, dbd and dbu from the SLOTS rows of partials grad_h wrote (one per row tile), in x's dtype, all
    in one launch: program (j, segment) sums block j of one gradient's columns.

    PART is the backward's one fp32 workspace, row s = row tile s, columns [dWc (R*K) | dbc (R)] when WEIGHTS,
    [dbd (R)] at OFFSET_DBD when DOWN, [dbu (C)] at OFFSET_DBU when WEIGHTS. No atomics, a fixed order:
    bitwise the same on every rerun.
    """
    block = tl.program_id(0)
    segment = tl.program_id(1)
    if WEIGHTS:
        if segment == 0:
            _column_sums(PART, PART_STRIDE, DWC, R * K, SLOTS, block, DTYPE, UPCAST, BLOCK_S, BLOCK_W)
        if segment == 1:
            _column_sums(PART + R * K, PART_STRIDE, DBC, R, SLOTS, block, DTYPE, UPCAST, BLOCK_S, BLOCK_W)
        if segment == 3:
            _column_sums(PART + OFFSET_DBU, PART_STRIDE, DBU, C, SLOTS, block, DTYPE, UPCAST, BLOCK_S, BLOCK_W)
    if DOWN:
        if segment == 2:
            _column_sums(PART + OFFSET_DBD, PART_STRIDE, DBD, R, SLOTS, block, DTYPE, UPCAST, BLOCK_S, BLOCK_W)

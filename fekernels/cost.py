"""FLOPs and DRAM bytes of the op: the roofline the benchmarks compare against, and what each kernel moves.

``forward_cost`` and ``backward_cost`` are the op's floor: the FLOPs of its products and the bytes any
implementation must move (read the inputs once, write the outputs once). ``forward_traffic`` and
``backward_traffic`` list what the Triton launchers actually run, kernel by kernel (``launch.py``), counting
each tensor a kernel reads or writes once: re-reads that the tiling serves from L2 (the conv's K taps, the
operand tiles shared by neighbouring programs) and the small weight and partial-sum buffers are left out.

``python -m fekernels.cost`` prints the ViT-B example quoted in docs/kernels.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    """Arithmetic and memory traffic of one pass."""

    flops: int
    bytes: int

    def roofline_seconds(self, bytes_per_second: float, flops_per_second: float) -> float:
        """The floor on the pass's time: the larger of its memory time and its arithmetic time."""
        return max(self.bytes / bytes_per_second, self.flops / flops_per_second)


@dataclass(frozen=True)
class KernelTraffic:
    """The DRAM bytes one kernel (or library GEMM) of the Triton path reads and writes."""

    kernel: str
    reads: int
    writes: int

    @property
    def bytes(self) -> int:
        return self.reads + self.writes


def forward_cost(tokens: int, dim: int, bottleneck: int, kernel_size: int, element_size: int) -> Cost:
    """Forward over ``tokens`` = B*T*N rows: read x, write out and the saved z."""
    flops = tokens * (4 * dim * bottleneck + 2 * bottleneck * kernel_size)
    traffic = tokens * (2 * dim + bottleneck) * element_size
    return Cost(flops, traffic)


def backward_cost(tokens: int, dim: int, bottleneck: int, kernel_size: int, element_size: int) -> Cost:
    """Backward with every gradient: four GEMMs and the conv's two gradients; read dout, x and z, write dx."""
    flops = tokens * (8 * dim * bottleneck + 4 * bottleneck * kernel_size)
    traffic = tokens * (3 * dim + bottleneck) * element_size
    return Cost(flops, traffic)


def saved_bytes(tokens: int, bottleneck: int, element_size: int) -> int:
    """Memory the forward keeps for the backward beyond x: z, (B*T*N, R) in x's dtype."""
    return tokens * bottleneck * element_size


def forward_traffic(tokens: int, dim: int, bottleneck: int, element_size: int) -> list[KernelTraffic]:
    """The Triton forward: forward_down_kernel (z and a = act(conv(z))), then forward_up_kernel (residual)."""
    x = out = tokens * dim * element_size
    z = a = tokens * bottleneck * element_size
    return [KernelTraffic("forward_down_kernel: x -> z, a", reads=x, writes=z + a),
            KernelTraffic("forward_up_kernel: a, x -> out", reads=a + x, writes=out)]


def backward_traffic(tokens: int, dim: int, bottleneck: int, element_size: int, need_x: bool = True,
                     need_down: bool = True, need_weights: bool = True) -> list[KernelTraffic]:
    """The Triton backward for the gradients wanted (``need_down``: of w_down/b_down; ``need_weights``: of the
    conv and the up-projection), kernel by kernel. grad_h's scratch (da, then dh, read back by the program
    that wrote it) is counted once as a write."""
    wide, narrow = tokens * dim * element_size, tokens * bottleneck * element_size  # (M, C) and (M, R) tensors
    need_dz = need_x or need_down
    kernels = [KernelTraffic("grad_h_kernel: dout, z -> dh, a, dz", reads=wide + narrow,
                             writes=narrow * (1 + need_weights + need_dz))]
    if need_x:
        kernels.append(KernelTraffic("grad_x_kernel: dz, dout -> dx", reads=narrow + wide, writes=wide))
    if need_down:
        kernels.append(KernelTraffic("dWd = dz^T x GEMM (library)", reads=narrow + wide, writes=0))
    if need_weights:
        kernels.append(KernelTraffic("dWu = dout^T a GEMM (library)", reads=wide + narrow, writes=0))
    if need_down or need_weights:  # the per-tile partials and the bias/conv gradients: small, left out
        kernels.append(KernelTraffic("reduce_partials_kernel: partials -> dWc, dbc, dbd, dbu", reads=0, writes=0))
    return kernels


def _example() -> None:
    tokens, dim, bottleneck, kernel_size, element_size = 8 * 16 * 197, 768, 384, 3, 2
    print("ViT-B/16, B=8, T=16, N=197, C=768, R=384, K=3, bf16")
    for name, floor, kernels in (
        ("forward", forward_cost(tokens, dim, bottleneck, kernel_size, element_size),
         forward_traffic(tokens, dim, bottleneck, element_size)),
        ("backward", backward_cost(tokens, dim, bottleneck, kernel_size, element_size),
         backward_traffic(tokens, dim, bottleneck, element_size)),
    ):
        moved = sum(kernel.bytes for kernel in kernels)
        print(f"{name}: {floor.flops / 1e9:.1f} GFLOP; floor {floor.bytes / 1e6:.1f} MB, "
              f"the Triton path moves {moved / 1e6:.1f} MB:")
        for kernel in kernels:
            print(f"  {kernel.kernel:<40} read {kernel.reads / 1e6:6.1f} MB, write {kernel.writes / 1e6:6.1f} MB")
    saved = saved_bytes(tokens, bottleneck, element_size)
    print(f"saved z per adapter: {saved / 1e6:.1f} MB, 12 adapters: {12 * saved / 1e6:.0f} MB")


if __name__ == "__main__":
    _example()

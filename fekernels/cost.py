"""FLOPs and the fewest DRAM bytes of the op, per pass: the roofline that benchmarks compare against.

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


def forward_cost(tokens: int, dim: int, bottleneck: int, kernel_size: int, element_size: int) -> Cost:
    """Forward over ``tokens`` = B*T*N rows: read x, write out and the saved z."""
    flops = tokens * (4 * dim * bottleneck + 2 * bottleneck * kernel_size)
    traffic = tokens * (2 * dim + bottleneck) * element_size
    return Cost(flops, traffic)


def backward_cost(tokens: int, dim: int, bottleneck: int, kernel_size: int, element_size: int) -> Cost:
    """Backward with every gradient: read dout, x, z, write dx, and round trips of a, dz (x's dtype), dh (fp32)."""
    flops = tokens * (8 * dim * bottleneck + 4 * bottleneck * kernel_size)
    traffic = tokens * (3 * dim * element_size + bottleneck * element_size + 2 * bottleneck * (2 * element_size + 4))
    return Cost(flops, traffic)


def saved_bytes(tokens: int, bottleneck: int, element_size: int) -> int:
    """Memory the forward keeps for the backward beyond x: z, (B*T*N, R) in x's dtype."""
    return tokens * bottleneck * element_size


def _example() -> None:
    tokens, dim, bottleneck, kernel_size, element_size = 8 * 16 * 197, 768, 384, 3, 2
    forward = forward_cost(tokens, dim, bottleneck, kernel_size, element_size)
    backward = backward_cost(tokens, dim, bottleneck, kernel_size, element_size)
    bandwidth, rate = 3.0e12, 800e12  # H100, measured on this workplace's machines (see docs/kernels.md)
    print("ViT-B/16, B=8, T=16, N=197, C=768, R=384, K=3, bf16")
    print(f"forward : {forward.flops / 1e9:.1f} GFLOP, {forward.bytes / 1e6:.1f} MB, "
          f"memory {forward.bytes / bandwidth * 1e6:.1f} us, arithmetic {forward.flops / rate * 1e6:.1f} us")
    print(f"backward: {backward.flops / 1e9:.1f} GFLOP, {backward.bytes / 1e6:.1f} MB, "
          f"memory {backward.bytes / bandwidth * 1e6:.1f} us, arithmetic {backward.flops / rate * 1e6:.1f} us")
    saved = saved_bytes(tokens, bottleneck, element_size)
    print(f"saved z per adapter: {saved / 1e6:.1f} MB, 12 adapters: {12 * saved / 1e6:.0f} MB")


if __name__ == "__main__":
    _example()

"""Fused Triton kernels of the FE-Adapter op (kernels, launchers, torch.library registration)."""

from fekernels.triton_kernels.op import fe_adapter_triton

__all__ = ["fe_adapter_triton"]

"""One line on the CPU a benchmark ran on: int8 speed depends on its vector instructions.

PyTorch's dynamic int8 linear (fbgemm, the x86 engine) uses AVX-512 VNNI (one instruction per
4-way int8 dot product) where the CPU has it, and plain AVX2 otherwise; the same code's ratios
differ between the two.
"""

from __future__ import annotations

import platform

import torch


def describe_cpu() -> str:
    """E.g. ``CPU AMD EPYC, 2 cores, x86_64; torch kernels AVX512; AVX-512 VNNI yes; quantized engine x86``."""
    kernels = torch.backends.cpu.get_cpu_capability()
    engine = torch.backends.quantized.engine
    get = getattr(torch.cpu, "get_capabilities", None)  # newer torch; older ones tell only the kernel level
    if get is None:
        return f"CPU {platform.machine()}; torch kernels {kernels}; quantized engine {engine}"
    caps = get()
    arch = caps.get("architecture", platform.machine())
    if arch in ("x86_64", "AMD64"):
        vnni = f"AVX-512 VNNI {'yes' if caps.get('avx512_vnni') else 'no'}"
    else:
        vnni = "int8 dot products " + ("yes" if caps.get("dot") or caps.get("i8mm") else "not reported")
    return (
        f"CPU {caps.get('cpu_name', '?')}, {caps.get('num_physical_cores', '?')} cores, {arch}; "
        f"torch kernels {kernels}; {vnni}; quantized engine {engine}"
    )


if __name__ == "__main__":
    print(describe_cpu())

"""One line on the CPU a benchmark ran on: int8 speed depends on its vector instructions.

fbgemm's int8 kernels use AVX-512 VNNI (one instruction per 4-way int8 dot product) where the CPU
has it, and plain AVX2 otherwise; the same code's ratios differ between the two.
"""

from __future__ import annotations

import torch


def describe_cpu() -> str:
    """E.g. ``CPU AMD EPYC, 2 cores; torch kernels AVX512; int8 dot products AVX-512 VNNI; AMX no``."""
    caps = torch.cpu.get_capabilities()
    vnni = "AVX-512 VNNI" if caps.get("avx512_vnni") else "AVX-VNNI" if caps.get("avx_vnni") else "none (no VNNI)"
    amx = "yes" if caps.get("amx_int8") or caps.get("amx_tile") else "no"
    return (
        f"CPU {caps.get('cpu_name', '?')}, {caps.get('num_physical_cores', '?')} cores; torch kernels "
        f"{torch.backends.cpu.get_cpu_capability()}; int8 dot products {vnni}; AMX {amx}"
    )


if __name__ == "__main__":
    print(describe_cpu())

"""Device, dtype and thread choices: explicit arguments win, then what the hardware does natively."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

_DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "int8": torch.int8,  # int8 linear layers, the rest fp32 (CPU only; encoder/quantize.py)
}


def choose_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _cpu_flags(cpuinfo: str | None = None) -> set[str]:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512_BF16 / AMX on x86, BF16 on Arm).

    Without it, torch emulates bf16 matmuls and they run far slower than fp32 (measured on an AVX2-only
    machine: 0.3 GFLOP/s bf16 against 88 GFLOP/s fp32), so fp32 is the fast choice there.
    """
    flags = _cpu_flags(cpuinfo)
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """True when an x86 CPU sums int8 products into int32 in hardware (VNNI, AMX).

    Without it, oneDNN's int8 GEMM goes through saturating int16 pair sums (see ``encoder/quantize.py``).
    """
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False  # not measured elsewhere: the exact 7-bit path
    return bool(_cpu_flags(cpuinfo) & {"avx512_vnni", "avx_vnni", "amx_int8"})


def choose_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is not None:
        try:
            return _DTYPES[dtype.lower()]
        except KeyError:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}") from None
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return torch.float32


def int8_by_default(device: torch.device) -> bool:
    """Whether ``dtype=None`` means int8 here: on x86 CPUs with VNNI (exact int8 products), where it was measured
    faster than both fp32 and bf16 within the parity bounds (``encoder/quantize.py``). ``load_encoder`` still
    falls back to ``choose_dtype(None, device)`` if the checkpoint fails the int8 check at load."""
    if device.type != "cpu" or not cpu_has_vnni():
        return False
    from .quantize import int8_available

    return int8_available()


_ALLOCATOR_TUNED = False


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse instead of returning each one to the OS.

    The encoder allocates the same large activations (tens of MB) batch after batch. By default glibc serves them
    with fresh ``mmap`` calls, so every batch pays for page faults and zeroing: measured here, a ModernBERT
    forward spent a third of its time on that and ran 1.6x slower at 16k-token batches. Raising the mmap and trim
    thresholds makes the heap reuse those blocks. Process-wide; glibc only (a no-op elsewhere). Returns whether
    it applied.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if platform.system() != "Linux":
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = mallopt(m_mmap_threshold, 1 << 30) == 1 and mallopt(m_trim_threshold, 1 << 31) == 1
    _ALLOCATOR_TUNED = ok
    return ok

"""GPU timing and peak rates for the benchmarks that take ``--device``.

The peak of a device comes from :data:`PEAKS` (the vendors' dense figures, keyed on
``torch.cuda.get_device_name``), or, for a device not listed, from a large matrix product
measured here (printed as "measured"). Times on a GPU are wall times between two
``torch.cuda.synchronize()`` calls.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import torch

TFLOPS = 1e12
PEAKS: tuple[tuple[str, dict[str, float]], ...] = (
    # (name contains, dense peak TFLOP/s): fp64 on the vector units, fp64_tc on the
    # tensor cores, tf32 dense (half the sparse figure). The first match wins, so the
    # variants come before the plain name.
    ("H200", {"fp64": 34.0, "fp64_tc": 67.0, "fp32": 67.0, "tf32": 494.7}),
    ("H100 PCIe", {"fp64": 26.0, "fp64_tc": 51.0, "fp32": 51.0, "tf32": 378.0}),
    ("H100 NVL", {"fp64": 30.0, "fp64_tc": 60.0, "fp32": 60.0, "tf32": 417.5}),
    ("H100", {"fp64": 34.0, "fp64_tc": 67.0, "fp32": 67.0, "tf32": 494.7}),  # SXM
    ("A100", {"fp64": 9.7, "fp64_tc": 19.5, "fp32": 19.5, "tf32": 156.0}),
    ("L4", {"fp64": 0.49, "fp32": 30.3, "tf32": 60.0}),
    ("T4", {"fp64": 0.25, "fp32": 8.1}),
)
"""Dense peak TFLOP/s of common GPUs (NVIDIA data sheets)."""


def is_gpu(device: torch.device) -> bool:
    return device.type == "cuda"


def sync(device: torch.device) -> None:
    if is_gpu(device):
        torch.cuda.synchronize(device)


def wall(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """Wall seconds of ``fn()`` with the device's queue drained before and after."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


@functools.cache
def matmul_flops(device: torch.device, dtype: torch.dtype, n: int = 8192, repeats: int = 5):
    """FLOP/s of an ``n x n`` matrix product in ``dtype`` on ``device`` (best of
    ``repeats``), the rate this device reaches on the easiest product there is."""
    a = torch.rand(n, n, device=device, dtype=dtype)
    b = torch.rand(n, n, device=device, dtype=dtype)
    a @ b  # warm up (cuBLAS handles, clocks)
    best = min(wall(lambda: a @ b, device)[0] for _ in range(repeats))
    return 2.0 * n**3 / best


def precision_key(dtype: torch.dtype) -> str:
    """The :data:`PEAKS` column a product in ``dtype`` runs at, as torch is set now."""
    if dtype == torch.float64:
        return "fp64_tc"  # cuBLAS's DGEMM uses the FP64 tensor cores where there are some
    if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "fp32"


def peak_flops(device: torch.device, dtype: torch.dtype) -> tuple[float, str]:
    """The device's peak FLOP/s for products in ``dtype`` and where it comes from."""
    name = torch.cuda.get_device_name(device)
    key = precision_key(dtype)
    for part, peaks in PEAKS:
        if part in name:
            value = peaks.get(key, peaks.get(key.removesuffix("_tc")))
            if value is not None:
                return value * TFLOPS, f"{name} data sheet, {key}"
    return matmul_flops(device, dtype), f"{name}: not in the table, measured 8192^3 matmul"


def describe(device: torch.device) -> str:
    """One line: the device and its memory."""
    if not is_gpu(device):
        return f"device cpu, {torch.get_num_threads()} torch threads"
    props = torch.cuda.get_device_properties(device)
    return (
        f"device {device} = {props.name}, {props.total_memory / 2**30:.0f} GiB, "
        f"{props.multi_processor_count} SMs, torch {torch.__version__}, "
        f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}"
    )


def rate_line(label: str, flops: float, seconds: float, device: torch.device, dtype) -> str:
    """``label``: achieved FLOP/s, against the device's peak and its measured matmul."""
    achieved = flops / seconds
    peak, source = peak_flops(device, dtype)
    matmul = matmul_flops(device, dtype)
    return (
        f"{label}: {seconds:.3f} s, {achieved / TFLOPS:.2f} TFLOP/s = {achieved / peak:.1%} of "
        f"peak {peak / TFLOPS:.1f} ({source}) = {achieved / matmul:.1%} of the measured "
        f"matmul {matmul / TFLOPS:.1f} TFLOP/s"
    )

"""Where the heavy products run: one ``device`` option for evaluation, distances,
neighbours and principal components.

``"auto"`` (the default everywhere) is the GPU when torch sees one, else the CPU;
``"cpu"``, ``"cuda"`` and ``"cuda:1"`` choose one. Results always come back to the host
as numpy arrays; on a GPU the work is cut into blocks sized to its free memory
(:func:`memory_budget`). torch is imported on first use, not with this module.

Example::

    resolve_device("auto")      # device(type='cuda') on a GPU machine, else cpu
    pairwise(vectors, "hellinger", device="cuda")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fspace.errors import ConfigError
from fspace.registry import Param

if TYPE_CHECKING:
    import torch

DEVICE = Param(
    "device",
    str,
    "auto",
    "where evaluation, distances, neighbours and principal components run: auto (the GPU "
    "if torch sees one, else the CPU), cpu, cuda or cuda:N",
)
"""The parameter every registry entry that computes on a device declares."""

GPU_SHARE = 0.5
"""Share of the GPU's free memory one computation's blocks may take."""
CPU_BUDGET = 512 * 2**20
"""Blocks on the CPU: the sizes the CPU code was tuned with (cache, not memory, bound)."""


class DeviceError(ConfigError):
    """A device was asked for that is not there, or is not a device name."""


def resolve_device(device: Any = "auto", *, option: str = "device") -> torch.device:
    """The torch device that ``device`` names (``None`` is ``"auto"``).

    Raises :class:`DeviceError` (one line, naming ``option``) for a name torch does not
    know or a GPU that is not there.
    """
    import torch

    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        found = torch.device(device.strip() if isinstance(device, str) else device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(
            f"{option}={device!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if found.type == "cpu":
        return found
    if found.type != "cuda":
        raise DeviceError(f"{option}={device!r}: only cpu and cuda devices are supported")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"{option}={device!r} but torch sees no CUDA GPU here "
            f"(torch {torch.__version__}); use {option}=cpu or auto"
        )
    count = torch.cuda.device_count()
    if found.index is not None and found.index >= count:
        raise DeviceError(
            f"{option}={device!r} but torch sees {count} CUDA GPU(s) (cuda:0 to "
            f"cuda:{count - 1}); choose one of them or auto"
        )
    return found


def check_device(device: Any, *, option: str = "device") -> str:
    """``device`` checked as a name (before any data): returned unchanged, or DeviceError."""
    if isinstance(device, str):
        resolve_device(device, option=option)
        return device
    raise DeviceError(f"{option} must be a device name (auto, cpu, cuda, cuda:N), got {device!r}")


def memory_budget(device: torch.device, share: float = GPU_SHARE) -> int:
    """Bytes one computation's blocks may take on ``device``: ``share`` of a GPU's free
    memory, or :data:`CPU_BUDGET` on the CPU."""
    import torch

    if device.type != "cuda":
        return CPU_BUDGET
    free, _ = torch.cuda.mem_get_info(device)
    return max(2**20, int(free * share))


def on_gpu(device: torch.device) -> bool:
    """Whether ``device`` is a GPU (the CPU code paths stay exactly as they were)."""
    return device.type == "cuda"

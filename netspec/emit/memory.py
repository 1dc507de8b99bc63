"""Before build, train and export allocate anything: does the model fit in memory?

A spec such as ``input: [3, 100000, 100000]`` checks fine, and PyTorch would then try to
allocate hundreds of gigabytes (failing after minutes of swapping, or killed by the
kernel).  ``netspec summary`` already knows, without torch, the bytes of the parameters,
buffers and one batch's input and layer outputs; the guard compares them with the memory
available now and refuses with both figures, unless told to go ahead anyway
(``--ignore-memory`` on the command line, ``ignore_memory=True`` in Python).

The figures are estimates: the sum of every layer's output is what a training step keeps
for backward (a forward pass without gradients frees most of it earlier), and optimizer
state is not counted.  The guard is there to refuse what cannot work, not to plan."""

from __future__ import annotations

import os
from typing import Any

FLAG = "--ignore-memory"
KEYWORD = "ignore_memory=True"


class NotEnoughMemory(MemoryError):
    """The model would need more memory than is available; nothing was allocated."""


def size_text(n: int | float) -> str:
    """Decimal units, as ``netspec summary`` prints memory."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{int(n)} B"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel writes kB (KiB)
    except (OSError, ValueError, IndexError):
        pass
    return None


def available(device: Any = None) -> int | None:
    """Bytes that can be allocated now on ``device`` (a torch.device; None or a CPU/MPS
    device: main memory); None when the platform does not say."""
    if device is not None and getattr(device, "type", "cpu") == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    found = _meminfo_available()  # Linux: what can be had without swapping
    if found is not None:
        return found
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):  # free pages, else the machine's
        try:
            return os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            continue
    return None


def needed(result: Any, batch: int | None = None) -> tuple[int, int, int]:
    """(parameters, buffers, one batch) in bytes, ``netspec summary``'s figures: the batch
    is the input and every layer's output at ``batch`` (0 without a batch)."""
    from netspec.emit.summary import summarize

    summary = summarize(result, batch=max(1, batch or 1))
    activations = summary.input_bytes + summary.activation_bytes if batch else 0
    return summary.param_bytes, summary.buffer_bytes, activations


def guard(
    result: Any,
    *,
    batch: int | None = None,
    training: bool = False,
    device: Any = None,
    ignore: bool = False,
    have: int | None = None,
) -> None:
    """Raise NotEnoughMemory when the checked spec ``result`` needs more than is available
    (``have`` bytes, else what ``available`` says) for its parameters (and their gradients
    when ``training``) and buffers and, with ``batch``, one batch.  On a CUDA ``device``
    that is compared with the GPU's free memory, and the weights (built on the CPU first)
    with main memory too."""
    if ignore or not getattr(result, "layers", None):
        return
    params, buffers, activations = needed(result, batch)
    on_cuda = getattr(device, "type", "cpu") == "cuda"
    weights = params * (2 if training else 1) + buffers
    checks = [(device if on_cuda else None, weights, activations, training)]
    if on_cuda:
        checks.append((None, params + buffers, 0, False))
    for place, weights, activations, gradients in checks:
        free = have if have is not None else available(place)
        need = weights + activations
        if free is None or need <= free:
            continue
        what = "parameters, their gradients and buffers" if gradients else "parameters and buffers"
        if activations:
            what = (f": {size_text(weights)} for its {what}, {size_text(activations)} for one "
                    f"batch of {batch} (the input and every layer's output)")
        else:
            what = f" for its {what}"
        where = f" on {place}" if place is not None else ""
        raise NotEnoughMemory(
            f"the model needs {size_text(need)}{what}; {size_text(free)} is available{where}; "
            f"pass {FLAG} (Python: {KEYWORD}) to go ahead anyway"
        )

"""The importer's tests make and drop whole torchvision and timm models (RegNetY-128GF is
2.6 GB of weights, twice: the reference and the import).  Freed memory that glibc keeps in
its arenas made one xdist worker grow past 14 GB over the coverage test, and a loaded
24 GiB machine killed it; each test hands its freed memory back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

import pytest

_LIBC_NAME = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_LIBC_NAME) if _LIBC_NAME else None


@pytest.fixture(autouse=True)
def _memory_goes_back_after_each_test():
    yield
    gc.collect()  # fx graphs hold cycles: their tensors go only when the collector runs
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)

import ctypes
import ctypes.util
import gc
import os
import sys

import pytest
from hypothesis import HealthCheck, settings

# CI draws a few thousand cases over all layer types; `make fuzz` sets
# NETSPEC_FUZZ_EXAMPLES=100000 (spread over the same tests) with a fixed seed.
FUZZ = int(os.environ.get("NETSPEC_FUZZ_EXAMPLES", "0"))
settings.register_profile(
    "netspec",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
settings.load_profile("netspec")


def examples(default: int) -> int:
    """Examples per differential test: ``default`` in CI, a share of the fuzz budget in fuzz."""
    if FUZZ:
        return max(default, FUZZ // 60)
    return default


@pytest.fixture(autouse=True)
def _setuptools_distutils_stays_in_place():
    """Importing pip (tests/importer/test_trust.py does, as `netspec import pip:main`
    would) switches off setuptools' distutils shim for the rest of the process (pypa/pip#8761);
    a later torch.compile then fails inside inductor on the stdlib distutils. Each test
    starts where a fresh interpreter would."""
    yield
    hack = sys.modules.get("_distutils_hack")
    finder = getattr(hack, "DISTUTILS_FINDER", None)
    if finder is None or "spec_for_distutils" not in vars(finder):
        return
    del finder.spec_for_distutils
    for name in [n for n in sys.modules if n == "distutils" or n.startswith("distutils.")]:
        if "_distutils" not in (getattr(sys.modules[name], "__file__", "") or ""):
            del sys.modules[name]


_LIBC_NAME = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_LIBC_NAME) if _LIBC_NAME else None
_WHOLE_MODELS = ("importer", "test_zoo")  # tests that make and drop whole models


@pytest.fixture(autouse=True)
def _memory_goes_back_after_whole_models(request):
    """The importer's and the zoo's tests make and drop whole torchvision and timm models
    (RegNetY-128GF is 2.6 GB of weights, twice: the reference and the import).  Freed memory
    that glibc kept in its arenas made one xdist worker grow past 14 GB and a loaded 24 GiB
    machine killed it; such a test hands its freed memory back to the system."""
    yield
    if not any(part in str(request.node.path) for part in _WHOLE_MODELS):
        return
    gc.collect()  # fx graphs hold cycles: their tensors go only when the collector runs
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)

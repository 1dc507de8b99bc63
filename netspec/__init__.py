"""netspec: declare a PyTorch network in YAML, check every shape statically, build it.

    >>> import netspec
    >>> result = netspec.check("specs/tutorial_cifar10.yaml")
    >>> model = netspec.build("specs/tutorial_cifar10.yaml")   # imports torch

Only ``build`` imports torch; loading and checking are pure Python."""

# `build` is the function, imported eagerly on purpose: importing the submodule
# netspec.build later (lazily, or by `from netspec.build import ...`) would set the package
# attribute `build` to the module and shadow the function.  netspec/build.py imports torch
# only when called.
from .build import build
from .check import CheckResult, Spec, check, load
from .errors import Diagnostic, SpecError

__version__ = "0.1.0"
__all__ = ["CheckResult", "Diagnostic", "Spec", "SpecError", "build", "check", "load"]

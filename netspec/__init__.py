"""netspec: declare a PyTorch network in YAML, check every shape statically, build it.

    >>> import netspec
    >>> result = netspec.check("specs/tutorial_cifar10.yaml")
    >>> model = netspec.build("specs/tutorial_cifar10.yaml")   # imports torch

Only ``build`` imports torch; loading and checking are pure Python."""

from .check import CheckResult, Spec, check, load
from .errors import Diagnostic, SpecError

__version__ = "0.1.0"
__all__ = ["CheckResult", "Diagnostic", "Spec", "SpecError", "build", "check", "load"]


def build(spec, input_shape=None):
    """A torch.nn.Sequential for ``spec`` (see netspec.build.build)."""
    from .build import build as _build

    return _build(spec, input_shape)

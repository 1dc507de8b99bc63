"""netspec: declare a PyTorch network in YAML, check every shape statically, build it.

    >>> import netspec
    >>> result = netspec.check("specs/tutorial_cifar10.yaml")
    >>> model = netspec.build("specs/tutorial_cifar10.yaml")   # imports torch

Only ``build`` imports torch; loading and checking are pure Python."""

from netspec.core.diagnostics import Diagnostic, SpecError
from netspec.core.version import __version__  # noqa: F401  (netspec.__version__)
from netspec.pipeline.check import CheckResult, Spec, check, load

__all__ = ["CheckResult", "Diagnostic", "Spec", "SpecError", "build", "check", "load"]

# The emitters' Python APIs the README documents (netspec.render.to_dot,
# netspec.summary.summarize, netspec.codegen.generate, ...), loaded on first use so that
# `import netspec` stays light.
_EMITTERS = ("codegen", "export", "render", "report", "summary")


def __getattr__(name: str):
    if name == "build":  # loaded on first use: `python -m netspec check` loads no emitter
        from netspec.emit.build import build

        return build
    if name in _EMITTERS:
        from importlib import import_module

        return import_module(f"netspec.emit.{name}")
    raise AttributeError(f"module 'netspec' has no attribute {name!r}")

"""What netspec calls to make a model: ``netspec import TARGET`` and a spec's ``base:``.

A spec is data, and one from someone else must not run code on the reader's machine.
``netspec import TARGET`` calls what its user typed; but ``base:`` in a spec would call
whatever the spec names, with arguments the spec chooses (``base: pip:main`` with
``base_kwargs: {args: [install, ...]}``).  So a spec may call torchvision's model
builders, and other modules only when the person running netspec lists them in
NETSPEC_TRUSTED_MODULES (comma-separated, a module and everything under it).

Whoever names it, a target is called only if it is a model factory (``factory_problem``):
an ``nn.Module`` subclass, or a Python function that is not declared to return anything
else; never a loader (``torch.hub``, ``torch.load``, ...), which runs code or unpickles
data from files and repositories, even where its package is trusted.  What it returns must
be an ``nn.Module``, and a target that raises SystemExit (``sys.exit``) is an error, not
the end of netspec."""

from __future__ import annotations

import builtins
import inspect
import os
from typing import Any

ENVIRONMENT = "NETSPEC_TRUSTED_MODULES"
# torchvision's builders take `weights` (and `weights_backbone`): a spec only needs the
# architecture, and `weights: DEFAULT` would download tens of megabytes during `check`
DOWNLOADING_KWARGS = ("weights", "weights_backbone", "pretrained", "pretrained_backbone")


# Modules whose functions load models, code or pickles from files, repositories or URLs
# (torch.hub.load runs a repository's hubconf.py; torch.load unpickles): never called, even
# when NETSPEC_TRUSTED_MODULES=torch.  Checked against the target's module and the
# function's own, so a loader re-exported elsewhere is still one.
LOADER_MODULES = ("torch.hub", "torch.utils.model_zoo", "torch.serialization", "torch.package",
                  "torch.jit._serialization", "torch.export", "torch._export",
                  "torch.distributed.checkpoint", "safetensors", "joblib", "dill", "cloudpickle")


def trusted_modules() -> list[str]:
    return [m.strip() for m in os.environ.get(ENVIRONMENT, "").split(",") if m.strip()]


def _under(module: str, roots: tuple[str, ...] | list[str]) -> bool:
    return any(module == r or module.startswith(r + ".") for r in roots)


def _declared_return(function: Any) -> Any:
    """The class a function's return annotation names, resolved without evaluating it (a
    string annotation is looked up as a dotted name in the function's module); None when
    there is none or it is not a plain class (``Optional[...]``, a TypeVar, ...)."""
    try:
        declared = inspect.signature(function).return_annotation
    except (TypeError, ValueError):
        return None
    if declared is inspect.Signature.empty:
        return None
    if declared is None or declared == "None":
        return type(None)
    if isinstance(declared, str):
        namespace = getattr(inspect.unwrap(function), "__globals__", {})
        head, *rest = declared.split(".")
        found = namespace.get(head, getattr(builtins, head, None))
        for part in rest:
            found = getattr(found, part, None)
        declared = found
    return declared if inspect.isclass(declared) else None


def factory_problem(target: str, module: str, obj: Any) -> str | None:
    """Why ``obj`` (``target``, found in ``module``) is not called as a model factory; None
    when it may be."""
    from torch import nn

    homes = [module, getattr(obj, "__module__", None) or ""]
    loader = next((h for h in homes if _under(h, LOADER_MODULES)), None)
    if loader:
        return (f"'{target}' is a loader ({loader} reads code or pickled objects from files or "
                "repositories), not a model factory; netspec never calls one, even from a "
                f"module in {ENVIRONMENT}")
    if inspect.isclass(obj):
        if not issubclass(obj, nn.Module):
            return f"'{target}' is the class {obj.__qualname__}, which is not an nn.Module"
        return None
    if not inspect.isfunction(obj):
        return (f"'{target}' is a {type(obj).__name__}, not a Python function or nn.Module "
                "class that builds a model")
    declared = _declared_return(obj)
    if declared is not None and not issubclass(declared, nn.Module):
        name = "None" if declared is type(None) else declared.__qualname__
        return (f"'{target}' is declared to return {name}, not an nn.Module: netspec calls "
                "only functions that build a model")
    return None


def base_problem(target: str, kwargs: dict) -> tuple[tuple, str] | None:
    """Where in the spec and why it may not call ``target`` with ``kwargs``; None when it
    may (the target itself is then still checked by ``factory_problem``)."""
    module, _, name = target.partition(":")
    if _under(module, LOADER_MODULES):  # before importing anything of it
        return ("base",), (f"base: '{target}' is a loader, not a model factory; a spec never "
                           f"calls one, even from a module in {ENVIRONMENT}")
    if module == "torchvision":
        from torchvision import models

        builders = models.list_models()
        if name not in builders:  # only builders: torchvision.models holds other functions
            from netspec.core.diagnostics import did_you_mean

            return ("base",), (f"base: torchvision has no model '{name}'"
                               f"{did_you_mean(name, builders)}")
    elif not _under(module, trusted_modules()):
        top = module.split(".")[0]
        return ("base",), (
            f"base: '{target}' is not a torchvision model, and a spec may call other code "
            f"only from modules you trust: run with {ENVIRONMENT}={top} if you do (a spec "
            "from someone else could otherwise run any installed function)")
    for key in DOWNLOADING_KWARGS:  # trusted factories too: check downloads nothing
        if kwargs.get(key) not in (None, False):
            return ("base_kwargs", key), (
                f"base_kwargs: {key} would download weights; a spec takes only the "
                "architecture from its base (load trained weights with --weights)")
    return None

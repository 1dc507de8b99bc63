"""Which model factories a spec's ``base:`` may call.

A spec is data, and one from someone else must not run code on the reader's machine.
``netspec import TARGET`` calls what its user typed; but ``base:`` in a spec would call
whatever the spec names, with arguments the spec chooses (``base: pip:main`` with
``base_kwargs: {args: [install, ...]}``).  So a spec may call torchvision's model
builders, and other modules only when the person running netspec lists them in
NETSPEC_TRUSTED_MODULES (comma-separated, a module and everything under it)."""

from __future__ import annotations

import os

ENVIRONMENT = "NETSPEC_TRUSTED_MODULES"
# torchvision's builders take `weights` (and `weights_backbone`): a spec only needs the
# architecture, and `weights: DEFAULT` would download tens of megabytes during `check`
DOWNLOADING_KWARGS = ("weights", "weights_backbone", "pretrained", "pretrained_backbone")


def trusted_modules() -> list[str]:
    return [m.strip() for m in os.environ.get(ENVIRONMENT, "").split(",") if m.strip()]


def base_problem(target: str, kwargs: dict) -> tuple[tuple, str] | None:
    """Where in the spec and why it may not call ``target`` with ``kwargs``; None when it
    may."""
    module, _, name = target.partition(":")
    if module == "torchvision":
        from torchvision import models

        builders = models.list_models()
        if name not in builders:  # only builders: torchvision.models holds other functions
            from .errors import did_you_mean

            return ("base",), (f"base: torchvision has no model '{name}'"
                               f"{did_you_mean(name, builders)}")
        for key in DOWNLOADING_KWARGS:
            if kwargs.get(key) not in (None, False):
                return ("base_kwargs", key), (
                    f"base_kwargs: {key} would download weights; a spec takes only the "
                    "architecture from its base (load trained weights with --weights)")
        return None
    if any(module == m or module.startswith(m + ".") for m in trusted_modules()):
        return None
    top = module.split(".")[0]
    return ("base",), (
        f"base: '{target}' is not a torchvision model, and a spec may call other code only "
        f"from modules you trust: run with {ENVIRONMENT}={top} if you do (a spec from "
        "someone else could otherwise run any installed function)")

"""Stage 5, emit as torch modules: a checked spec -> nn.Sequential over an OrderedDict."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from .check import Spec, check
from .errors import SpecError
from .infer import LayerResult
from .layers import REGISTRY


def torch_class(type_name: str) -> Any:
    from torch import nn

    from .torch_modules import OUTPUT_ONLY

    lt = REGISTRY[type_name]
    if lt.output_only:
        return OUTPUT_ONLY[type_name]
    return getattr(nn, lt.torch_class or lt.name)


def construct(result: LayerResult) -> Any:
    """One torch module from a checked layer (its inferred arguments filled in)."""
    lt = REGISTRY[result.type]
    kwargs = {k: lt.arg_by_name[k].type.to_torch(v) for k, v in result.kwargs.items()}
    return torch_class(result.type)(**kwargs)


def build(spec: Spec | str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> Any:
    """A torch.nn.Sequential whose children are named as in the spec.

    Raises SpecError (every diagnostic) if the spec does not check."""
    from torch import nn

    result = check(spec, input_shape)
    if not result.ok:
        raise SpecError(result.errors)
    return nn.Sequential(OrderedDict((r.name, construct(r)) for r in result.layers))

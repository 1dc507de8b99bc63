"""The layer registry: one file per family, each layer type declared once.

Importing this package registers every type in ``REGISTRY`` (name -> LayerType)."""

from . import activation, conv, dropout, linear, merge, norm, padding, pool, recurrent, reshape  # noqa: F401
from ._base import REGISTRY, Arg, Args, LayerType, Shape, ShapeError, fmt

__all__ = ["REGISTRY", "Arg", "Args", "LayerType", "Shape", "ShapeError", "fmt"]

"""The op registry: one file per family, each op declared once.

Importing this package registers every op in ``REGISTRY`` (name -> LayerType)."""

from netspec.ops import (  # noqa: F401  (importing a family file registers its ops)
    activation,
    attention,
    attention_bias,
    buffer,
    conv,
    dropout,
    index,
    linear,
    merge,
    norm,
    normalize,
    padding,
    parameter,
    pool,
    position,
    recurrent,
    reduce,
    reshape,
    std_conv,
    tensor,
    window,
)
from netspec.ops.declare import REGISTRY, Arg, Args, LayerType, Shape, ShapeError, fmt

__all__ = ["REGISTRY", "Arg", "Args", "LayerType", "Shape", "ShapeError", "fmt"]

"""Reductions over sample dims: Mean, Sum, Amax, Amin.

torch.mean(x, dim, keepdim) and its kin, plain functions in forward.  dim (an int or a
list) counts the batch as torch code does (dim 1 is the channels); reducing the batch, or
every dim (no dim), would mix the samples and is refused.  Dtypes as torch has them: Mean
needs a floating-point input, Sum of int32 is int64, Amax and Amin keep any dtype."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    Bool,
    Code,
    Draw,
    FxCall,
    Port,
    Shape,
    ShapeError,
    Torch,
    layer,
)
from netspec.ops.tensor import DIM_OR_DIMS, refuse_repeats, sample_dims


def _reduced(a: Args, x: Shape, function: str) -> Shape:
    if a.dim is None or a.dim == []:
        raise ShapeError(f"without dim (dim is {a.dim}) torch.{function} reduces every "
                         "dimension, the batch too; give the sample dims to reduce (1 or "
                         "later)", "dim")
    wrapped = sample_dims(a.dim, x)
    refuse_repeats(a.dim, wrapped)
    if -1 in wrapped:
        raise ShapeError(f"dim {a.dim} names the batch dimension: reducing it mixes the "
                         "samples (the batch size is not part of the spec)", "dim")
    if a.keepdim:
        return tuple(1 if i in wrapped else n for i, n in enumerate(x))
    return tuple(n for i, n in enumerate(x) if i not in wrapped)


def _arguments(values: dict, x: Shape) -> tuple:
    """torch.mean(x, (2, 3)), torch.mean(x, 1, True): keepdim written when it is true."""
    dim = values["dim"]
    dim = tuple(dim) if isinstance(dim, list) else dim
    return (dim, True) if values["keepdim"] else (dim,)


def _key_args(kw: dict) -> str:
    keep = ", keepdim" if kw.get("keepdim") else ""
    return f"dim {kw.get('dim')}{keep}"


def _sum_dtype(a: Args, dtypes: list[str]) -> str:
    """torch.sum of an integer tensor is int64; floats keep their dtype."""
    return "int64" if dtypes[0] in ("int32", "int64") else dtypes[0]


def _reduction(name: str, function: str, port: str, doc: str, fx_params: tuple,
               dtype=None) -> None:
    def rule(a: Args, x: Shape) -> Shape:
        return _reduced(a, x, function)

    rule.__doc__ = doc
    layer(name, Arg("dim", DIM_OR_DIMS.nullable(), None), Arg("keepdim", Bool, False),
          family="pool", inputs=(Port(dtype=port, min_rank=1),),  # drawn as pooling
          dtype=dtype,
          torch=Torch(f"torch.{function}", module=False, arguments=_arguments),
          code=Code(call=f"torch.{function}"), draw=Draw(key_args=_key_args),
          origin="reduced", fx=(FxCall(function, fx_params),))(rule)


_DIM_KEEPDIM_DTYPE = (("dim", None), ("keepdim", False), ("dtype", None))
_reduction("Mean", "mean", "float", "torch.mean(x, dim, keepdim): the average over dim (an "
           "int or a list, counting the batch); needs a floating-point input, as torch "
           "does.", _DIM_KEEPDIM_DTYPE)
_reduction("Sum", "sum", "any", "torch.sum(x, dim, keepdim): the sum over dim (counting the "
           "batch); integer inputs sum to int64, as torch's do.", _DIM_KEEPDIM_DTYPE,
           dtype=_sum_dtype)
_reduction("Amax", "amax", "any", "torch.amax(x, dim, keepdim): the maximum over dim "
           "(counting the batch).", (("dim", ()), ("keepdim", False)))
_reduction("Amin", "amin", "any", "torch.amin(x, dim, keepdim): the minimum over dim "
           "(counting the batch).", (("dim", ()), ("keepdim", False)))

"""Attention biases of LeViT and EfficientFormer: a learnt bias per head and per offset,
gathered by an index buffer into the heads×N×N bias added to the attention logits.

The positions of an h×w map are numbered row by row; the offset of positions (r1, c1) and
(r2, c2) is |r1 - r2|·w + |c1 - c2|, below h·w.  AttentionBiasIndex is that N×N table of
offsets (N = h·w), a buffer as timm registers it (state_dict key ``attention_bias_idxs``;
LeViT's is not persistent, EfficientFormer's is).  AttentionBias gathers the heads×(h·w)
``attention_biases`` Parameter by it: ``attention_biases[:, attention_bias_idxs]``.  Neither
has a batch dimension; the Add broadcasts the bias against the batch."""

from __future__ import annotations

import math
from typing import Any

from netspec.ops.declare import (
    TENSOR_INDEX,
    Arg,
    Args,
    Bool,
    Code,
    Draw,
    Int,
    Output,
    Port,
    Shape,
    ShapeError,
    Size,
    Torch,
    fmt,
    layer,
    torch_side_source,
)


def _pair(size: Any) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (size[0], size[1])


def offsets(height: int, width: int, stride: int = 1) -> list[list[int]]:
    """attention_bias_index's values, in plain Python (the importer compares a model's
    buffer with them)."""
    keys = [(r, c) for r in range(height) for c in range(width)]
    queries = [(r, c) for r in range(0, height, stride) for c in range(0, width, stride)]
    return [[abs(r1 - r2) * width + abs(c1 - c2) for r2, c2 in keys] for r1, c1 in queries]


def _queries(size: int, stride: int) -> int:
    return (size + stride - 1) // stride


def resolution_of(values: list[list[int]]) -> tuple[list[int], int] | None:
    """(the h×w map, the stride of its queries) whose offsets ``values`` (an Nq×N nested
    list) are, or None."""
    if not values or not isinstance(values[0], list):
        return None
    n, queries = len(values[0]), len(values)
    for height in range(1, n + 1):
        if n % height:
            continue
        width = n // height
        for stride in range(1, max(height, width) + 1):
            if _queries(height, stride) * _queries(width, stride) == queries and \
                    offsets(height, width, stride) == values:
                return [height, width], stride
    return None


def _read_index(values: list[list[int]], persistent: bool) -> dict[str, Any] | None:
    """The arguments of the buffer ``values`` (its contents as nested lists), or None when
    they are not such a table."""
    found = resolution_of(values)
    if found is None:
        return None
    resolution, stride = found
    args: dict[str, Any] = {"resolution": resolution[0] if resolution[0] == resolution[1]
                            else resolution}
    if stride != 1:
        args["stride"] = stride
    if not persistent:
        args["persistent"] = False
    return args


def _index_shape(a: Args) -> tuple[int, int]:
    """Nq×N: the query positions (every stride-th row and column) by the map's."""
    h, w = _pair(a.resolution)
    return _queries(h, a.stride) * _queries(w, a.stride), h * w


def _key_args(kwargs: dict) -> str:
    h, w = _pair(kwargs.get("resolution", "?"))
    return f"{h}×{w}"


def _index_source(kwargs: dict) -> str:
    h, w = _pair(kwargs["resolution"])
    stride = kwargs.get("stride", 1)
    return f"attention_bias_index({h}, {w}{f', {stride}' if stride != 1 else ''})"


@layer("AttentionBiasIndex", Arg("resolution", Size(2)), Arg("stride", Int(), 1),
       Arg("persistent", Bool, True),
       family="parameter", inputs=(), outputs=(Output(dtype="int64", batched=False),),
       torch=Torch("netspec.ops.torch_side.attention_bias_index", module=False,
                   parameter=True, buffer=True, persistent="persistent",
                   arguments=lambda values, x: (*_pair(values["resolution"]), values["stride"])),
       buffers=lambda a, shapes: {"int64": math.prod(_index_shape(a))},
       code=Code(tensor=_index_source, helper=torch_side_source("attention_bias_index")),
       draw=Draw(key_args=_key_args), read_buffer=_read_index)
def attention_bias_index(a: Args, shapes: list) -> Shape:
    """A buffer of int64 offsets: for every pair of the N = h·w positions of an h×w map,
    |r1 - r2|·w + |c1 - c2| (timm's LeViT and EfficientFormer attention_bias_idxs); with
    stride, the queries are every stride-th row and column (LeViT's AttentionDownsample):
    ceil(h/stride)·ceil(w/stride) rows.  persistent: whether it is in the state_dict."""
    return _index_shape(a)


def _read_gather(index: tuple, value: Any) -> dict[str, Any] | None:
    """table[:, index] (TENSOR_INDEX standing for the index tensor, whose value is ``value``): the
    arguments, or None where the subscript is another."""
    if len(index) != 2 or index[0] != slice(None) or index[1] is not TENSOR_INDEX:
        return None
    read = _read_index(value, True)
    return None if read is None else {k: v for k, v in read.items() if k != "persistent"}


@layer("AttentionBias", Arg("resolution", Size(2)), Arg("stride", Int(), 1), family="shape",
       inputs=(Port("table", whole=True, min_rank=0, doc="the bias per head and offset"),
               Port("index", dtype="int", whole=True, min_rank=0,
                    doc="the offset of every pair of positions")),
       outputs=(Output(batched=False),), dtype=lambda a, dtypes: dtypes[0],
       torch=Torch("netspec.ops.torch_side.attention_bias", module=False),
       code=Code(call="attention_bias", helper=torch_side_source("attention_bias")),
       draw=Draw(key_args=_key_args), tensor_index=_read_gather)
def attention_bias(a: Args, shapes: list[Shape]) -> Shape:
    """table[:, index]: the heads×Nq×N bias of an h×w map (N = h·w; Nq = N, or with stride
    its queries, every stride-th row and column) from a heads×(h·w) table and the Nq×N
    offsets of AttentionBiasIndex (whose values are below h·w)."""
    table, index = shapes
    h, w = _pair(a.resolution)
    queries, n = _index_shape(a)
    if len(table) != 2 or table[1] < n:
        raise ShapeError(f"the table {a.describe(0)} must be heads×{n}: a column for each of "
                         f"the {h}·{w} offsets of a {h}×{w} map", "resolution")
    if table[1] > n:  # torch gathers from it all the same
        a.warn(f"the table {a.describe(0)} has {table[1]} columns, and a {h}×{w} map reads "
               f"only the first {n}", "resolution")
    if tuple(index) != (queries, n):
        which = f"each of its {queries} queries (stride {a.stride})" if a.stride != 1 else \
            f"every pair of the {n} positions"
        raise ShapeError(f"the index {a.describe(1)} must be {queries}×{n}: an offset for "
                         f"{which} of a {h}×{w} map (not {fmt(index)})", "resolution")
    return (table[0], queries, n)

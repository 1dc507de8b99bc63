"""Relative position biases of windowed attention (Swin, MaxViT): an index buffer and the
bias gathered from a learnt table by it.

A window of h×w positions has (2h-1)·(2w-1) relative offsets; a Parameter table holds a
bias per offset and head, and RelativePositionIndex, a buffer (as torchvision registers
it: state_dict key ``relative_position_index``, loaded with the weights), maps every pair
of positions to its offset.  RelativePositionBias gathers the table by the index into the
1×heads×N×N bias that is added to the attention logits.  Neither has a batch dimension, as
a Parameter has none; the Add broadcasts the bias against the batch."""

from __future__ import annotations

from typing import Any

from netspec.ops.declare import (
    REQUIRED,
    Arg,
    Args,
    Bool,
    Code,
    Draw,
    FxCall,
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


def _window_of(size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else size
    return h, w


def _window(a: Args) -> tuple[int, int]:
    return _window_of(a.window_size)


def relative_offsets(height: int, width: int, class_token: bool = False) -> list[list[int]]:
    """relative_position_index's values, in plain Python (the importer compares a model's
    buffer with them)."""
    cells = [(r, c) for r in range(height) for c in range(width)]
    index = [[(r1 - r2 + height - 1) * (2 * width - 1) + c1 - c2 + width - 1
              for r2, c2 in cells] for r1, c1 in cells]
    if class_token:
        offsets = (2 * height - 1) * (2 * width - 1)
        index = [[offsets + 2] + [offsets] * len(cells)] + \
            [[offsets + 1] + row for row in index]
    return index


def _read_index(values: list[list[int]], persistent: bool) -> dict | None:
    """The window (and class token) whose relative_position_index ``values`` are, or
    None."""
    for class_token in (False, True):
        n = len(values) - class_token
        for height in range(1, n + 1):
            if n % height == 0 and relative_offsets(height, n // height, class_token) == values:
                window = [height, n // height]
                args = {"window_size": window[0] if window[0] == window[1] else window}
                if class_token:
                    args["class_token"] = True
                if not persistent:
                    args["persistent"] = False
                return args
    return None


def _index_source(kwargs: dict) -> str:
    h, w = _window_of(kwargs.get("window_size"))
    token = ", class_token=True" if kwargs.get("class_token") else ""
    return f"relative_position_index({h}, {w}{token})"


def _positions(a: Args) -> int:
    """N: the window's positions, and its class token's."""
    h, w = _window(a)
    return h * w + (1 if a.class_token else 0)


@layer("RelativePositionIndex", Arg("window_size", Size(2)), Arg("class_token", Bool, False),
       Arg("persistent", Bool, True), family="parameter",
       inputs=(), outputs=(Output(dtype="int64", batched=False),),
       torch=Torch("netspec.ops.torch_side.relative_position_index", module=False,
                   parameter=True, buffer=True, persistent="persistent",
                   arguments=lambda values, x: (*_window_of(values["window_size"]),
                                                values["class_token"])),
       buffers=lambda a, shapes: {"int64": _positions(a) ** 2},
       code=Code(tensor=_index_source, helper=torch_side_source("relative_position_index")),
       read_buffer=_read_index,
       draw=Draw(key_args=lambda kw: f"window {kw.get('window_size', '?')}"))
def relative_position_index(a: Args, shapes: list) -> Shape:
    """A buffer of int64 indices: for every pair of the h·w positions of a window, the row
    of its relative offset in a (2h-1)·(2w-1)-row table (torchvision's
    _get_relative_position_index; Swin's relative_position_index); with class_token (timm's
    BEiT), a first row and column more: the class token's pairs, at the three rows after
    the window's offsets.  persistent: whether it is in the state_dict."""
    n = _positions(a)
    return (n, n)


def _method(node: Any, *names: str) -> bool:
    return node.op == "call_method" and node.target in names


def _sizes(node: Any) -> tuple:
    """The sizes of x.view(a, b, c) or x.view((a, b, c)), or a permute's dims."""
    rest = node.args[1:]
    return tuple(rest[0]) if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else \
        tuple(rest)


def _only_user(node: Any) -> Any:
    return next(iter(node.users)) if len(node.users) == 1 else None


def _read_chain(node: Any) -> tuple | None:
    """table[index.view(-1)].view(n, n, -1).permute(2, 0, 1), then .contiguous() and
    .unsqueeze(0) in either order (timm's Swin and BEiT _get_rel_pos_bias; timm's RelPosBias
    indexes by a flat index and views as n×n×heads), starting at the fx node of the
    subscript: what relative_position_bias computes of an n×n index (see
    LayerType.read_chain; the view's last size, -1 or the table's columns, is returned for
    the importer to compare).  fx nodes are read by their attributes: no torch here."""
    if node.op != "call_function" or getattr(node.target, "__name__", "") != "getitem" or \
            getattr(node.target, "__module__", "") not in ("_operator", "operator") or \
            len(node.args) != 2 or node.kwargs:
        return None
    table, flat = node.args
    if not hasattr(table, "op") or not hasattr(flat, "op") or len(flat.users) != 1:
        return None
    view = _only_user(node)
    if view is None or not _method(view, "view", "reshape") or view.kwargs:
        return None
    n, m, columns = (*_sizes(view), None, None, None)[:3]
    if len(_sizes(view)) != 3 or not isinstance(n, int) or n != m or \
            not isinstance(columns, int):
        return None
    permute = _only_user(view)
    if permute is None or not _method(permute, "permute") or permute.kwargs or \
            _sizes(permute) != (2, 0, 1):
        return None
    chain, current, unsqueezed = [node, view, permute], permute, False
    while (user := _only_user(current)) is not None and not user.kwargs and (
            (_method(user, "contiguous") and len(user.args) == 1) or
            (not unsqueezed and _method(user, "unsqueeze") and tuple(user.args[1:]) == (0,))):
        unsqueezed = unsqueezed or _method(user, "unsqueeze")
        chain.append(user)
        current = user
    return (table, flat, chain, (n, n), columns) if unsqueezed else None


@layer("RelativePositionBias", Arg("window_size", Size(2)), Arg("class_token", Bool, False),
       family="shape",
       inputs=(Port("table", whole=True, min_rank=0, doc="the bias per offset and head"),
               Port("index", dtype="int", whole=True, min_rank=0,
                    doc="the offset of every pair of positions")),
       outputs=(Output(batched=False),), dtype=lambda a, dtypes: dtypes[0],
       torch=Torch("netspec.ops.torch_side.relative_position_bias", module=False),
       fx=(FxCall("relative_position_bias", (("window_size", REQUIRED), ("class_token", False)),
                  module="netspec.ops.torch_side"),), read_chain=_read_chain,
       code=Code(call="relative_position_bias", helper=torch_side_source("relative_position_bias")),
       draw=Draw(key_args=lambda kw: f"window {kw.get('window_size', '?')}"))
def relative_position_bias(a: Args, shapes: list[Shape]) -> Shape:
    """table[index.view(-1)].view(N, N, -1).permute(2, 0, 1).unsqueeze(0): the 1×heads×N×N
    bias of a window of N = h·w positions, from a (2h-1)·(2w-1)×heads table and the N×N
    index of RelativePositionIndex (whose values are below the table's rows)."""
    table, index = shapes
    h, w = _window(a)
    rows, n = (2 * h - 1) * (2 * w - 1) + (3 if a.class_token else 0), _positions(a)
    token = " and 3 for the class token" if a.class_token else ""
    if len(table) != 2 or table[0] < rows:
        raise ShapeError(f"the table {a.describe(0)} must be {rows}×heads: a row for each of "
                         f"the (2·{h}-1)·(2·{w}-1) relative offsets of a {h}×{w} window{token}",
                         "window_size")
    if table[0] > rows:  # torch gathers from it all the same
        a.warn(f"the table {a.describe(0)} has {table[0]} rows, and a {h}×{w} window reads "
               f"only the first {rows}", "window_size")
    if tuple(index) != (n, n):
        raise ShapeError(f"the index {a.describe(1)} must be {n}×{n}: an offset for every "
                         f"pair of the {n} positions of a {h}×{w} window"
                         f"{' and its class token' if a.class_token else ''} (not {fmt(index)})",
                         "window_size")
    return (1, table[1], n, n)

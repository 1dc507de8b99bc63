"""Relative position biases of windowed attention (Swin, MaxViT): an index buffer and the
bias gathered from a learnt table by it.

A window of h×w positions has (2h-1)·(2w-1) relative offsets; a Parameter table holds a
bias per offset and head, and RelativePositionIndex, a buffer (as torchvision registers
it: state_dict key ``relative_position_index``, loaded with the weights), maps every pair
of positions to its offset.  RelativePositionBias gathers the table by the index into the
1×heads×N×N bias that is added to the attention logits.  Neither has a batch dimension, as
a Parameter has none; the Add broadcasts the bias against the batch."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    Code,
    Draw,
    Output,
    Port,
    Shape,
    ShapeError,
    Size,
    Torch,
    fmt,
    layer,
)

# as generated files define them; netspec.ops.torch_side holds the same source
# (tests/ops/test_op_position.py holds them equal)
RELATIVE_POSITION_INDEX = '''def relative_position_index(height: int, width: int) -> torch.Tensor:
    """(h·w)×(h·w) indices into a (2h-1)·(2w-1)-row table of relative position biases."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    coords_flat = torch.stack([rows.flatten(), cols.flatten()])
    relative = (coords_flat[:, :, None] - coords_flat[:, None, :]).permute(1, 2, 0)
    return (relative[:, :, 0] + height - 1) * (2 * width - 1) + relative[:, :, 1] + width - 1'''

RELATIVE_POSITION_BIAS = \
    '''def relative_position_bias(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """1×heads×N×N: each head's bias for every pair of the N positions of a window."""
    n = index.shape[0]
    bias = table[index.reshape(-1)].reshape(n, n, -1)
    return bias.permute(2, 0, 1).contiguous().unsqueeze(0)'''


def _window_of(size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else size
    return h, w


def _window(a: Args) -> tuple[int, int]:
    return _window_of(a.window_size)


def relative_offsets(height: int, width: int) -> list[list[int]]:
    """relative_position_index's values, in plain Python (the importer compares a model's
    buffer with them)."""
    cells = [(r, c) for r in range(height) for c in range(width)]
    return [[(r1 - r2 + height - 1) * (2 * width - 1) + c1 - c2 + width - 1 for r2, c2 in cells]
            for r1, c1 in cells]


def _read_index(values: list[list[int]], persistent: bool) -> dict | None:
    """The window whose relative_position_index ``values`` are (a persistent buffer, as
    torchvision registers it), or None."""
    n = len(values)
    for height in range(1, n + 1):
        if persistent and n % height == 0 and relative_offsets(height, n // height) == values:
            window = [height, n // height]
            return {"window_size": window[0] if window[0] == window[1] else window}
    return None


def _index_source(kwargs: dict) -> str:
    return "relative_position_index({}, {})".format(*_window_of(kwargs.get("window_size")))


@layer("RelativePositionIndex", Arg("window_size", Size(2)), family="parameter",
       inputs=(), outputs=(Output(dtype="int64", batched=False),),
       torch=Torch("netspec.ops.torch_side.relative_position_index", module=False,
                   parameter=True, buffer=True,
                   arguments=lambda values, x: tuple(_window_of(values["window_size"]))),
       buffers=lambda a, shapes: {"int64": (_window(a)[0] * _window(a)[1]) ** 2},
       code=Code(tensor=_index_source, helper=RELATIVE_POSITION_INDEX), read_buffer=_read_index,
       draw=Draw(key_args=lambda kw: f"window {kw.get('window_size', '?')}"))
def relative_position_index(a: Args, shapes: list) -> Shape:
    """A buffer of int64 indices: for every pair of the h·w positions of a window, the row
    of its relative offset in a (2h-1)·(2w-1)-row table (torchvision's
    _get_relative_position_index; Swin's relative_position_index)."""
    h, w = _window(a)
    return (h * w, h * w)


@layer("RelativePositionBias", Arg("window_size", Size(2)), family="shape",
       inputs=(Port("table", whole=True, min_rank=0, doc="the bias per offset and head"),
               Port("index", dtype="int", whole=True, min_rank=0,
                    doc="the offset of every pair of positions")),
       outputs=(Output(batched=False),), dtype=lambda a, dtypes: dtypes[0],
       torch=Torch("netspec.ops.torch_side.relative_position_bias", module=False),
       code=Code(call="relative_position_bias", helper=RELATIVE_POSITION_BIAS),
       draw=Draw(key_args=lambda kw: f"window {kw.get('window_size', '?')}"))
def relative_position_bias(a: Args, shapes: list[Shape]) -> Shape:
    """table[index.view(-1)].view(N, N, -1).permute(2, 0, 1).unsqueeze(0): the 1×heads×N×N
    bias of a window of N = h·w positions, from a (2h-1)·(2w-1)×heads table and the N×N
    index of RelativePositionIndex (whose values are below the table's rows)."""
    table, index = shapes
    h, w = _window(a)
    rows, n = (2 * h - 1) * (2 * w - 1), h * w
    if len(table) != 2 or table[0] < rows:
        raise ShapeError(f"the table {a.describe(0)} must be {rows}×heads: a row for each of "
                         f"the (2·{h}-1)·(2·{w}-1) relative offsets of a {h}×{w} window",
                         "window_size")
    if table[0] > rows:  # torch gathers from it all the same
        a.warn(f"the table {a.describe(0)} has {table[0]} rows, and a {h}×{w} window reads "
               f"only the first {rows}", "window_size")
    if tuple(index) != (n, n):
        raise ShapeError(f"the index {a.describe(1)} must be {n}×{n}: an offset for every "
                         f"pair of the {n} positions of a {h}×{w} window (not {fmt(index)})",
                         "window_size")
    return (1, table[1], n, n)

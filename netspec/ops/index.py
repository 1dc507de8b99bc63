"""Indexing one sample dim: Select, Narrow, Slice; cutting it in parts: Split, Chunk.

``x[:, 0]`` (a class token), ``torch.narrow(x, dim, start, length)`` and ``x[..., 2:n]``,
plain functions or indexes in forward.  dim counts the batch as torch code does (dim 1 is
the channels; negative dims count from the end and are written after ``...``); indexing the
batch is refused, since the batch size is not part of a spec, and so is an index that
leaves the output empty (torch returns an empty tensor: a network on it computes nothing).
Split and Chunk give several tensors, outputs named 0, 1, ... that later entries take by
name (``from: halves.0``)."""

from __future__ import annotations

from netspec.ops.declare import (
    MAX_DIM,
    REQUIRED,
    Arg,
    Args,
    ArgType,
    Code,
    Dim,
    Draw,
    FxCall,
    Int,
    Port,
    Shape,
    ShapeError,
    Torch,
    batched_dim,
    fmt,
    layer,
)

ANY_INT = Int(minimum=-MAX_DIM, maximum=MAX_DIM)


def _sample_dim(a: Args, x: Shape, verb: str) -> int:
    d = batched_dim(a.dim, len(x))
    if d == -1:
        raise ShapeError(f"dim {a.dim} is the batch dimension: {verb} it changes the batch, "
                         "which is not part of the spec; use dim 1 or later", "dim")
    return d


def index_at(dim: int, item) -> tuple:
    """The index of x that applies ``item`` at ``dim`` (counting the batch): x[:, item] for
    dim 1, x[..., item] for dim -1, x[..., item, :] for dim -2."""
    if dim >= 0:
        return (*(slice(None),) * dim, item)
    return (Ellipsis, item, *(slice(None),) * (-dim - 1))


# ---------------------------------------------------------------- Select


def select_state(a: Args, x: Shape) -> Shape:
    """h_n[-1]: one layer of a recurrent state (layers × batch × hidden; x without the
    batch), which gives a batch of hidden vectors."""
    rank = len(x) + 1
    if a.dim not in (0, -rank):
        raise ShapeError(f"{{state}} has its batch at dim 1: select dim 0 (a layer, as "
                         f"h_n[-1]); dim {a.dim} is not supported here", "dim")
    if not -x[0] <= a.index < x[0]:
        raise ShapeError(f"index {a.index} is out of range for dim 0 of {{state}}, of size "
                         f"{x[0]}; expected a value in [{-x[0]}, {x[0] - 1}]", "index")
    return x[1:]


@layer("Select", Arg("dim", Dim), Arg("index", ANY_INT), family="shape",
       inputs=(Port(dtype="any", min_rank=1, state_rule=select_state,
                    state_item=lambda i: {"dim": 0, "index": i}),),
       torch=Torch("operator.getitem", module=False,
                   arguments=lambda v, x: (index_at(v["dim"], v["index"]),)),
       code=Code(subscript=True),
       draw=Draw(key_args=lambda kw: f"dim {kw.get('dim')}, index {kw.get('index')}"),
       origin="selected", fx=(FxCall("select", (("dim", REQUIRED), ("index", REQUIRED))),))
def select(a: Args, x: Shape) -> Shape:
    """x[:, index] (torch.select(x, dim, index)): one position of dim, which goes away."""
    d = _sample_dim(a, x, "selecting from")
    size = x[d]
    if not -size <= a.index < size:
        raise ShapeError(f"index {a.index} is out of range for dim {a.dim} of size {size} "
                         f"(input N×{fmt(x)}); expected a value in [{-size}, {size - 1}]",
                         "index")
    return (*x[:d], *x[d + 1:])


# ---------------------------------------------------------------- Narrow


@layer("Narrow", Arg("dim", Dim), Arg("start", ANY_INT), Arg("length", Int(minimum=None)),
       family="shape", inputs=(Port(dtype="any", min_rank=1),),
       torch=Torch("torch.narrow", module=False, call_args=("dim", "start", "length")),
       code=Code(call="torch.narrow"),
       draw=Draw(key_args=lambda kw: f"dim {kw.get('dim')}, {kw.get('start')} +"
                                     f"{kw.get('length')}"),
       origin="narrowed",
       fx=(FxCall("narrow", (("dim", REQUIRED), ("start", REQUIRED), ("length", REQUIRED))),))
def narrow(a: Args, x: Shape) -> Shape:
    """torch.narrow(x, dim, start, length): length positions of dim from start (negative
    counts from the end)."""
    d = _sample_dim(a, x, "narrowing")
    size = x[d]
    if not -size <= a.start <= size:
        raise ShapeError(f"start {a.start} is out of range for dim {a.dim} of size {size} "
                         f"(input N×{fmt(x)}); expected a value in [{-size}, {size}]", "start")
    if a.length < 0:
        raise ShapeError(f"length {a.length} is negative", "length")
    start = a.start + size if a.start < 0 else a.start
    if start + a.length > size:
        raise ShapeError(f"start {start} + length {a.length} exceeds the size {size} of dim "
                         f"{a.dim} (input N×{fmt(x)})", "length")
    if a.length == 0:
        raise ShapeError("length 0 leaves the output empty", "length")
    return (*x[:d], a.length, *x[d + 1:])


# ---------------------------------------------------------------- Slice


def index_match(items: list, kwargs: dict, size_of) -> tuple | str:
    """x[:, 0] is a Select, x[:, 2:5] and x[..., :n] a Slice, x[:, None] an Unsqueeze: one
    dim indexed by a constant, every other taken whole."""
    index = items[0] if len(items) == 1 and not kwargs else None
    index = index if isinstance(index, tuple) else (index,)
    whole = slice(None)
    if index.count(Ellipsis) > 1:
        return "has two '...'; torch refuses it"
    at = index.index(Ellipsis) if Ellipsis in index else len(index)
    picked = [(i, v) for i, v in enumerate(index) if v is not Ellipsis and v != whole]
    if len(picked) != 1:
        return (f"indexes {len(picked)} dims at once; netspec writes one Select, Slice or "
                "Unsqueeze per indexed dim")
    i, item = picked[0]
    dim = i if i < at else i - len(index)  # after '...': counted from the end
    if dim == 0:
        return (f"indexes the batch dimension by {item!r} (x[0] is one sample); over the "
                "batch, indexing is not expressible in a spec")
    if item is None:
        return "Unsqueeze", {"dim": dim}
    if isinstance(item, int) and not isinstance(item, bool):
        return "Select", {"dim": dim, "index": item}
    bounds = (item.start, item.stop, item.step) if isinstance(item, slice) else ()
    if not bounds or not all(b is None or (isinstance(b, int) and not isinstance(b, bool))
                             for b in bounds):
        return (f"indexes dim {dim} by {item!r}; netspec indexes by a constant int or a "
                "slice of constants")
    written = {k: v for k, v in zip(("start", "end", "step"), bounds, strict=True)
               if v is not None and not (k == "step" and v == 1)}
    return "Slice", {"dim": dim, **written}


def _slice_key(kw: dict) -> str:
    step = kw.get("step", 1)
    text = f"{'' if kw.get('start') is None else kw['start']}:" \
           f"{'' if kw.get('end') is None else kw['end']}{'' if step == 1 else f':{step}'}"
    return f"dim {kw.get('dim')}, {text}"


@layer("Slice", Arg("dim", Dim), Arg("start", ANY_INT.nullable(), None),
       Arg("end", ANY_INT.nullable(), None), Arg("step", Int(), 1), family="shape",
       inputs=(Port(dtype="any", min_rank=1),),
       torch=Torch("operator.getitem", module=False, arguments=lambda v, x: (
           index_at(v["dim"], slice(v["start"], v["end"], v["step"])),)),
       code=Code(subscript=True), draw=Draw(key_args=_slice_key), origin="sliced",
       fx=(FxCall("getitem", match=index_match),))
def slice_(a: Args, x: Shape) -> Shape:
    """x[:, start:end:step] (x[..., start:end] for a negative dim): Python's slice of one
    dim, start and end clamped to it and negative ones counted from its end."""
    d = _sample_dim(a, x, "slicing")
    size = x[d]
    n = len(range(*slice(a.start, a.end, a.step).indices(size)))
    if n == 0:
        raise ShapeError(f"{_slice_key(a.values).split(', ', 1)[1]} takes no element of dim "
                         f"{a.dim} of size {size} (input N×{fmt(x)}): the output would be "
                         "empty", "end" if a.end is not None else "start")
    return (*x[:d], n, *x[d + 1:])


# ---------------------------------------------------------------- Split, Chunk

SIZES = ArgType({"type": ["integer", "array"], "minimum": 1, "maximum": MAX_DIM, "minItems": 1,
                 "items": {"type": "integer", "minimum": 1, "maximum": MAX_DIM}},
                "a part size, or a list of part sizes", tuple_for_torch=False)


def _parts(d: int, x: Shape, sizes: list[int]) -> list[Shape]:
    return [(*x[:d], n, *x[d + 1:]) for n in sizes]


@layer("Split", Arg("split_size_or_sections", SIZES), Arg("dim", Dim, 0), family="shape",
       inputs=(Port(dtype="any", min_rank=1),), parts=True,
       # positional: TorchScript matches aten::split(self, split_size, dim), not the
       # Python keyword split_size_or_sections
       torch=Torch("torch.split", module=False, arguments=lambda v, x: (
           list(v["split_size_or_sections"]) if isinstance(v["split_size_or_sections"],
                                                           (list, tuple))
           else v["split_size_or_sections"], v.get("dim", 0))),
       code=Code(call="torch.split"),
       draw=Draw(key_args=lambda kw: f"{kw.get('split_size_or_sections')} along dim "
                                     f"{kw.get('dim', 0)}"),
       fx=(FxCall("split", (("split_size_or_sections", REQUIRED), ("dim", 0))),))
def split(a: Args, x: Shape) -> list[Shape]:
    """torch.split(x, split_size_or_sections, dim): parts of that size along dim (the last
    one smaller where it does not divide), or of the listed sizes, which must add up to it."""
    d = _sample_dim(a, x, "splitting")
    size, sections = x[d], a.split_size_or_sections
    if isinstance(sections, (list, tuple)):
        if sum(sections) != size:
            raise ShapeError(f"split_size_or_sections {list(sections)} adds up to "
                             f"{sum(sections)}, but dim {a.dim} has size {size} (input "
                             f"N×{fmt(x)}); torch needs the sizes to add up exactly",
                             "split_size_or_sections")
        return _parts(d, x, list(sections))
    whole, rest = divmod(size, sections)
    return _parts(d, x, [sections] * whole + ([rest] if rest else []))


@layer("Chunk", Arg("chunks", Int(minimum=1)), Arg("dim", Dim, 0), family="shape",
       inputs=(Port(dtype="any", min_rank=1),), parts=True,
       torch=Torch("torch.chunk", module=False, call_args=("chunks", "dim")),
       code=Code(call="torch.chunk"),
       draw=Draw(key_args=lambda kw: f"{kw.get('chunks')} along dim {kw.get('dim', 0)}"),
       fx=(FxCall("chunk", (("chunks", REQUIRED), ("dim", 0))),))
def chunk(a: Args, x: Shape) -> list[Shape]:
    """torch.chunk(x, chunks, dim): dim cut into parts of ceil(size / chunks), the last one
    smaller; as torch, that can be fewer than chunks parts (6 in 4 chunks is 3 parts of 2)."""
    d = _sample_dim(a, x, "chunking")
    size = x[d]
    step = -(-size // a.chunks)
    whole, rest = divmod(size, step)
    return _parts(d, x, [step] * whole + ([rest] if rest else []))

"""Padding layers: Zero/Constant/Reflection/Replication/Circular Pad 1d/2d/3d, Pad, the
function F.pad, and PadToMultiple, F.pad by sizes computed from the input's (Swin's pad to
multiples of its window or patch).

``check_mode_padding`` holds F.pad's rules for each mode (negative padding crops);
convolutions with a padding_mode other than 'zeros' use it too."""

from __future__ import annotations

from netspec.ops.declare import (
    MAX_DIM,
    REQUIRED,
    Arg,
    Args,
    ArgType,
    Code,
    Draw,
    Enum,
    Float,
    FxCall,
    Port,
    Shape,
    ShapeError,
    Torch,
    fmt,
    layer,
    spatial_name,
    torch_side_source,
)


def check_mode_padding(mode: str, spatial: Shape, sides: list[tuple[int, int]], arg: str) -> None:
    """Refuse what F.pad refuses for ``mode`` padding of ``spatial`` (negative sides crop)."""
    for size, (lo, hi) in zip(spatial, sides, strict=True):
        out = size + lo + hi
        kept = size + min(lo, 0) + min(hi, 0)  # input elements left once the negative sides crop
        if mode == "reflect" and not (lo < size and hi < size):
            raise ShapeError(
                f"reflect padding ({lo}, {hi}) must be smaller than the input size {size} it pads",
                arg,
            )
        if mode == "circular" and not (lo <= size and hi <= size):
            raise ShapeError(
                f"circular padding ({lo}, {hi}) may wrap around at most once: it must "
                f"not exceed the input size {size}",
                arg,
            )
        if out < 1:
            raise ShapeError(
                f"padding ({lo}, {hi}) would leave {out} elements of an input of size {size}", arg
            )
        if mode == "circular" and (lo > kept or hi > kept):
            # PyTorch copies the wrap from the cropped output itself: past what the crop
            # leaves it reads overlapping or uninitialised memory (and raises for batch 1)
            raise ShapeError(
                f"circular padding ({lo}, {hi}) of an input of size {size}: the crop "
                f"leaves {max(kept, 0)} elements, too few to wrap {max(lo, hi)} "
                "around",
                arg,
            )
        if mode == "constant" and kept < 0:
            raise ShapeError(
                f"padding ({lo}, {hi}) crops {-min(lo, 0) - min(hi, 0)} elements "
                f"from an input of size {size}: PyTorch crops before it pads",
                arg,
            )


def pad_sides(a: Args, n: int) -> list[tuple[int, int]]:
    """(before, after) for each padded dim, first spatial dim first.

    PyTorch writes padding last dim first: (left, right, top, bottom, front, back)."""
    p = a.padding
    if isinstance(p, int):
        return [(p, p)] * n
    pairs = [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    return pairs[::-1]


def PadArg(n: int) -> ArgType:
    item = {"type": "integer", "minimum": -MAX_DIM, "maximum": MAX_DIM}
    schema = {
        "type": ["integer", "array"],
        "minimum": -MAX_DIM,
        "maximum": MAX_DIM,
        "items": item,
        "minItems": 2 * n,
        "maxItems": 2 * n,
    }
    return ArgType(schema, f"an integer or a list of {2 * n} integers", tuple_for_torch=True)


def _pad_rule(name: str, mode: str, n: int):
    def rule(a: Args, x: Shape) -> Shape:
        sides = pad_sides(a, n)
        if len(x) < n:
            # constant padding of a sample with n-1 dims (min_rank): the first padded dim is
            # the batch, which only a zero pair leaves alone ((1, -1) keeps the batch size
            # but shifts every sample into the next one's place)
            (lo, hi), sides = sides[0], sides[1:]
            if lo or hi:
                raise ShapeError(
                    f"{name} pads the last {n} dims, but the sample ({fmt(x)}) has only "
                    f"{len(x)}: the padding ({lo}, {hi}) for the missing dim would apply to "
                    "the batch dimension",
                    "padding",
                )
        spatial = x[len(x) - len(sides) :]
        check_mode_padding(mode, spatial, sides, "padding")
        out = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, sides, strict=True))
        return (*x[: len(x) - len(sides)], *out)

    return rule


def _register(n: int) -> None:
    # Reflection/replication/circular take (C, *spatial) or (N, C, *spatial); constant
    # padding pads the last n dims of any tensor that has them (with n-1 sample dims the
    # batch is the n-th last: only a zero pair for it keeps the batch).  Padding moves
    # values, so every dtype is fine.
    ranked = {n: spatial_name(n), n + 1: f"C×{spatial_name(n)}"}
    for kind in ("Zero", "Constant"):
        value = [Arg("value", Float())] if kind == "Constant" else []
        name = f"{kind}Pad{n}d"
        layer(
            name,
            Arg("padding", PadArg(n)),
            *value,
            family="padding",
            input_dtype="any",
            min_rank=max(n - 1, 1),
        )(_pad_rule(name, "constant", n))
    for kind, mode in (
        ("Reflection", "reflect"),
        ("Replication", "replicate"),
        ("Circular", "circular"),
    ):
        layer(
            f"{kind}Pad{n}d",
            Arg("padding", PadArg(n)),
            family="padding",
            input_dtype="any",
            ranks=ranked,
        )(_pad_rule(f"{kind}Pad{n}d", mode, n))


for _n in (1, 2, 3):
    _register(_n)


# ---------------------------------------------------------------- Pad, the function

PAD = ArgType({"type": "array", "maxItems": 128,
               "items": {"type": "integer", "minimum": -MAX_DIM, "maximum": MAX_DIM}},
              "a list of (before, after) pairs, the last dim first", tuple_for_torch=True)
PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_arguments(values: dict, x: Shape) -> tuple:
    """nn.functional.pad(x, (1, 1)), (x, (1, 1), "reflect"), (x, (1, 1), "constant", 0.5)."""
    mode, value = values["mode"], values["value"]
    if value is not None:
        return tuple(values["pad"]), mode, value
    return (tuple(values["pad"]),) if mode == "constant" else (tuple(values["pad"]), mode)


def _pad_computed(pad: list, x: Shape, value_at) -> dict | str:
    """The multiples of F.pad(x, pad) whose pad is computed from x's sizes as (k - n % k) %
    k after each dim of size n and 0 before it, value_at(v, sizes) being v for an input of
    those sample sizes; why not, where it is not (at sizes 1 to 4k and the input's own)."""
    if not isinstance(pad, (list, tuple)) or len(pad) % 2 or len(pad) // 2 > len(x) + 1:
        return f"pads by {pad!r}, which is no list of (before, after) pairs for the input"
    multiple = []
    for i in range(len(pad) // 2):
        dim = len(x) - 1 - i  # the pair's sample dim; -1: the batch

        def at(size: int, which: int, dim: int = dim, i: int = i) -> int | None:
            sizes = list(x)
            if dim >= 0:
                sizes[dim] = size
            return value_at(pad[2 * i + which], tuple(sizes))

        after = at(1, 1)
        k = after + 1 if isinstance(after, int) and after >= 0 else None
        tried = [*range(1, 4 * k + 1), x[dim] if dim >= 0 else 1] if k else []
        if k is None or any(at(n, 0) != 0 or at(n, 1) != (k - n % k) % k for n in tried) or \
                (dim < 0 and k != 1):
            where = f"dim {dim + 1}" if dim >= 0 else "the batch"
            return (f"pads {where} by a size computed in forward ({pad[2 * i]!r}, "
                    f"{pad[2 * i + 1]!r}) other than zeros after it up to a multiple of a "
                    "constant, (k - n % k) % k for its size n")
        if dim >= 0:
            multiple.append(k)
    return ("PadToMultiple", {"multiple": multiple[::-1]})


def pad_from_sizes(args: list, kwargs: dict, x: Shape, value_at) -> tuple | str:
    """F.pad(x, pad) with a pad computed in forward: PadToMultiple where it pads with zeros
    up to multiples (timm's Swin: (0, 0, 0, (7 - W % 7) % 7, 0, (7 - H % 7) % 7)), else
    why not."""
    names = ("pad", "mode", "value")
    values = {"mode": "constant", "value": None, **dict(zip(names, args, strict=False)),
              **kwargs}
    if set(values) != set(names) or values["mode"] != "constant" or \
            values["value"] not in (None, 0, 0.0):
        return (f"pads with mode {values.get('mode')!r} and value {values.get('value')!r} by "
                "sizes computed in forward; netspec pads so with zeros only")
    return _pad_computed(list(values["pad"]) if isinstance(values["pad"], (list, tuple))
                         else values["pad"], x, value_at)


def _pad_key(kw: dict) -> str:
    mode = kw.get("mode", "constant")
    return f"pad {tuple(kw.get('pad', ()))}{'' if mode == 'constant' else ', ' + mode}"


@layer("Pad", Arg("pad", PAD), Arg("mode", Enum(*PAD_MODES), "constant"),
       Arg("value", Float().nullable(), None), family="padding",
       inputs=(Port(dtype="any", min_rank=1),),
       torch=Torch("torch.nn.functional.pad", module=False, arguments=_pad_arguments),
       code=Code(call="nn.functional.pad"), draw=Draw(key_args=_pad_key), origin="padded",
       fx=(FxCall("pad", (("pad", REQUIRED), ("mode", "constant"), ("value", None)),
                  from_sizes=pad_from_sizes),))
def pad(a: Args, x: Shape) -> Shape:
    """torch.nn.functional.pad(x, pad, mode, value): pad holds (before, after) pairs for the
    last dims, the last dim first (negative ones crop); constant mode pads any of the
    sample's dims, reflect/replicate/circular the last 1, 2 or 3 of a sample with that many
    dims or one more, as torch's kernels take them."""
    p, rank = list(a.pad), len(x) + 1
    if len(p) % 2:
        raise ShapeError(f"pad {p} has {len(p)} entries; it holds (before, after) pairs",
                         "pad")
    n = len(p) // 2
    if a.mode != "constant":
        if a.value not in (None, 0):
            raise ShapeError(f"mode '{a.mode}' takes no value (value is {a.value}); only "
                             "'constant' padding fills with a value", "value")
        if n not in (1, 2, 3) or len(x) not in (n, n + 1):
            raise ShapeError(f"mode '{a.mode}' pads the last 1, 2 or 3 dims of a sample with "
                             "that many dims or one more; pad has "
                             f"{n} pair{'s' if n != 1 else ''} for a sample of {fmt(x)}",
                             "pad")
    elif n > rank:
        raise ShapeError(f"pad {p} has {n} pairs for a {rank}-d input (batch included: "
                         f"N×{fmt(x)}); at most one pair per dim", "pad")
    sides = [(p[2 * i], p[2 * i + 1]) for i in range(n)][::-1]  # first padded dim first
    if n == rank:
        (lo, hi), sides = sides[0], sides[1:]
        if lo or hi:
            raise ShapeError(f"pad {p}: its last pair ({lo}, {hi}) pads the batch "
                             "dimension, which is not part of the spec", "pad")
    spatial = x[len(x) - len(sides):]
    check_mode_padding(a.mode, spatial, sides, "pad")
    out = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, sides, strict=True))
    return (*x[:len(x) - len(sides)], *out)


# ---------------------------------------------------------------- PadToMultiple

MULTIPLES = ArgType({"type": "array", "minItems": 1, "maxItems": 64,
                     "items": {"type": "integer", "minimum": 1, "maximum": MAX_DIM}},
                    "a list of positive integers, one for each of the sample's last dims")


def _multiples_key(kw: dict) -> str:
    return "to multiples of " + "×".join(str(k) for k in kw.get("multiple", ()))


@layer("PadToMultiple", Arg("multiple", MULTIPLES, varargs=True), family="padding",
       inputs=(Port(dtype="any", min_rank=1),),
       torch=Torch("netspec.ops.torch_side.pad_to_multiple", module=False,
                   call_args=("multiple",)),
       code=Code(call="pad_to_multiple", helper=torch_side_source("pad_to_multiple")),
       draw=Draw(key_args=_multiples_key), origin="padded")
def pad_to_multiple(a: Args, x: Shape) -> Shape:
    """Zeros after each of the sample's last len(multiple) dims, up to a multiple of its
    entry (1 leaves a dim as it is), computed from the sizes the input has when the model
    runs: Swin pads H and W (and T) so to multiples of its window or patch."""
    multiple = list(a.multiple)
    if len(multiple) > len(x):
        raise ShapeError(f"multiple {multiple} has {len(multiple)} entries, but a sample of "
                         f"{fmt(x)} has {len(x)} dims (the batch is not padded)", "multiple")
    lead = len(x) - len(multiple)
    return (*x[:lead], *(-(-n // k) * k for n, k in zip(x[lead:], multiple, strict=True)))

"""Padding layers: Zero/Constant/Reflection/Replication/Circular Pad 1d/2d/3d, and Pad,
the function F.pad.

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


def _pad_key(kw: dict) -> str:
    mode = kw.get("mode", "constant")
    return f"pad {tuple(kw.get('pad', ()))}{'' if mode == 'constant' else ', ' + mode}"


@layer("Pad", Arg("pad", PAD), Arg("mode", Enum(*PAD_MODES), "constant"),
       Arg("value", Float().nullable(), None), family="padding",
       inputs=(Port(dtype="any", min_rank=1),),
       torch=Torch("torch.nn.functional.pad", module=False, arguments=_pad_arguments),
       code=Code(call="nn.functional.pad"), draw=Draw(key_args=_pad_key), origin="padded",
       fx=(FxCall("pad", (("pad", REQUIRED), ("mode", "constant"), ("value", None))),))
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

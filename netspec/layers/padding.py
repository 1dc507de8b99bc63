"""Padding layers: Zero/Constant/Reflection/Replication/Circular Pad 1d/2d/3d.

``check_mode_padding`` holds the rules of F.pad's non-constant modes; convolutions with
a padding_mode other than 'zeros' use it too."""

from __future__ import annotations

from ._base import MAX_DIM, Arg, Args, ArgType, Float, Shape, ShapeError, fmt, layer, spatial_name


def check_mode_padding(mode: str, spatial: Shape, sides: list[tuple[int, int]], arg: str) -> None:
    """Refuse what F.pad refuses for reflect/replicate/circular padding of ``spatial``."""
    for size, (lo, hi) in zip(spatial, sides):
        if mode == "reflect" and not (lo < size and hi < size):
            raise ShapeError(f"reflect padding ({lo}, {hi}) must be smaller than the input size "
                             f"{size} it pads", arg)
        if mode == "circular" and not (lo <= size and hi <= size):
            raise ShapeError(f"circular padding ({lo}, {hi}) may wrap around at most once: it must "
                             f"not exceed the input size {size}", arg)
        if size + lo + hi < 1:
            raise ShapeError(f"padding ({lo}, {hi}) would leave {size + lo + hi} elements of an "
                             f"input of size {size}", arg)


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
    schema = {"type": ["integer", "array"], "minimum": -MAX_DIM, "maximum": MAX_DIM,
              "items": item, "minItems": 2 * n, "maxItems": 2 * n}
    return ArgType(schema, f"an integer or a list of {2 * n} integers", tuple_for_torch=True)


def _pad_rule(mode: str, n: int):
    def rule(a: Args, x: Shape) -> Shape:
        sides = pad_sides(a, n)
        spatial = x[len(x) - n:]
        check_mode_padding(mode, spatial, sides, "padding")
        out = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, sides))
        return (*x[: len(x) - n], *out)

    return rule


def _register(n: int) -> None:
    # Reflection/replication/circular take (C, *spatial) or (N, C, *spatial); constant
    # padding pads the last n dims of any tensor that has them.
    ranked = {n: spatial_name(n), n + 1: f"C×{spatial_name(n)}"}
    layer(f"ZeroPad{n}d", Arg("padding", PadArg(n)), family="padding", input_dtype="any",
          ranks=ranked)(_pad_rule("constant", n))
    layer(f"ConstantPad{n}d", Arg("padding", PadArg(n)), Arg("value", Float()),
          family="padding", input_dtype="any", min_rank=n)(_pad_rule("constant", n))
    for kind, mode in (("Reflection", "reflect"), ("Replication", "replicate"),
                       ("Circular", "circular")):
        layer(f"{kind}Pad{n}d", Arg("padding", PadArg(n)), family="padding",
              ranks=ranked)(_pad_rule(mode, n))


for _n in (1, 2, 3):
    _register(_n)

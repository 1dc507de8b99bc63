"""Dropout of every kind.  Shape is kept; PyTorch checks p at construction."""

from __future__ import annotations

from ._base import Arg, Args, Bool, Probability, Shape, layer, spatial_name


def _same(a: Args, x: Shape) -> Shape:
    return x


P = Arg("p", Probability, 0.5)
INPLACE = Arg("inplace", Bool, False)

for _name in ("Dropout", "AlphaDropout", "FeatureAlphaDropout"):
    layer(_name, P, INPLACE, family="dropout", min_rank=0)(_same)


def _channel_dropout(n: int):
    def rule(a: Args, x: Shape) -> Shape:
        if len(x) != n + 1:
            a.warn(f"Dropout{n}d zeroes whole channels of C×{spatial_name(n)} samples; a {len(x)}-d sample is read differently (PyTorch warns or treats the "
                   f"batch as channels)")
        return x

    return rule


layer("Dropout1d", P, INPLACE, family="dropout", ranks={1: "L", 2: "C×L"})(_channel_dropout(1))
layer("Dropout2d", P, INPLACE, family="dropout", min_rank=0)(_channel_dropout(2))
layer("Dropout3d", P, INPLACE, family="dropout", min_rank=0)(_channel_dropout(3))

"""Dropout of every kind, and stochastic depth.  Shape is kept; PyTorch checks p at
construction (torchvision's StochasticDepth checks p and mode when called)."""

from __future__ import annotations

from netspec.ops.declare import (
    REQUIRED,
    Arg,
    Args,
    Bool,
    Draw,
    Enum,
    FxCall,
    Probability,
    Shape,
    Torch,
    fmt,
    layer,
    spatial_name,
    spelled,
)
from netspec.ops.text import dropout_key_args, stochastic_depth_key_args

DRAW = Draw(key_args=dropout_key_args)


def _same(a: Args, x: Shape) -> Shape:
    return x


P = Arg("p", Probability, 0.5)
INPLACE = Arg("inplace", Bool, False)

for _name in ("Dropout", "AlphaDropout", "FeatureAlphaDropout"):
    layer(_name, P, INPLACE, family="dropout", min_rank=0, draw=DRAW)(_same)


def _channel_dropout(n: int):
    """Dropout{n}d zeroes whole channels of C×(n spatial) samples.  On other ranks PyTorch
    still runs, but reads the tensor differently (see torch.nn.functional.dropout{n}d)."""
    layout = f"C×{spatial_name(n)}"

    def rule(a: Args, x: Shape) -> Shape:
        if len(x) == n + 1:
            return x
        name, got = f"Dropout{n}d", f"a {fmt(x)} sample"
        if n == 2 and len(x) == 2:
            what = (f"PyTorch reads {got} as C×L and zeroes whole channels (1-d channel dropout) "
                    "and warns; write Dropout1d for that")
        elif n == 2 and len(x) == 1:
            what = (f"on {got} PyTorch zeroes single elements, like Dropout, and warns that this "
                    "is deprecated; write Dropout")
        elif n == 2:
            what = (f"PyTorch zeroes whole channels of {got} (along its first dimension) and warns "
                    "that this rank is deprecated")
        else:
            what = (f"PyTorch reads {got} with the batch as one unbatched input whose channels are "
                    "the samples: it zeroes whole samples, not channels")
        a.warn(f"{name} expects {layout} samples: {what}")
        return x

    return rule


layer("Dropout1d", P, INPLACE, family="dropout", ranks={1: "L", 2: "C×L"}, draw=DRAW)(
    _channel_dropout(1))
layer("Dropout2d", P, INPLACE, family="dropout", min_rank=0, draw=DRAW)(_channel_dropout(2))
layer("Dropout3d", P, INPLACE, family="dropout", min_rank=0, draw=DRAW)(_channel_dropout(3))

# 'training' is ignored on import: in a spec, Dropout follows the model's train/eval mode
_DROPOUT_PARAMS = (("p", 0.5), ("training", True), ("inplace", False))
spelled({f"Dropout{d}": (FxCall(f"dropout{d}", _DROPOUT_PARAMS),) for d in ("", "1d", "2d", "3d")})


@layer("StochasticDepth", Arg("p", Probability), Arg("mode", Enum("batch", "row")),
       family="dropout", min_rank=0, torch=Torch("torchvision.ops.StochasticDepth"),
       draw=Draw(key_args=stochastic_depth_key_args),
       fx=(FxCall("stochastic_depth", (("p", REQUIRED), ("mode", REQUIRED), ("training", True)),
                  module="torchvision.ops.stochastic_depth"),))
def stochastic_depth(a: Args, x: Shape) -> Shape:
    """torchvision.ops.StochasticDepth(p, mode): in training, zeroes each sample ("row") or
    the whole batch ("batch") with probability p and scales what is kept by 1/(1-p); the
    identity in eval.  Built as torchvision's module, as its ConvNeXt, EfficientNet and Swin
    use it; torchvision.ops.stochastic_depth(x, p, mode, training) is the functional form."""
    return x

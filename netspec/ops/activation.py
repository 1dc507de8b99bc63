"""Every single-input activation in torch.nn.  Elementwise ones keep the shape."""

from __future__ import annotations

from netspec.ops.declare import (
    Arg,
    Args,
    Bool,
    Dim,
    Enum,
    Float,
    FxCall,
    Int,
    Shape,
    ShapeError,
    batched_dim,
    layer,
    spelled,
)


def _same(a: Args, x: Shape) -> Shape:
    return x


INPLACE = Arg("inplace", Bool, False)

_ELEMENTWISE = {
    "ReLU": [INPLACE],
    "ReLU6": [INPLACE],
    "SELU": [INPLACE],
    "GELU": [Arg("approximate", Enum("none", "tanh"), "none")],
    "SiLU": [INPLACE],
    "Mish": [INPLACE],
    "Hardswish": [INPLACE],
    "Hardsigmoid": [INPLACE],
    "Sigmoid": [],
    "Tanh": [],
    "LogSigmoid": [],
    "Softplus": [Arg("beta", Float(), 1.0), Arg("threshold", Float(), 20.0)],
    "Softsign": [],
    "Tanhshrink": [],
    "Threshold": [Arg("threshold", Float()), Arg("value", Float()), INPLACE],
}

for _name, _args in _ELEMENTWISE.items():
    layer(_name, *_args, family="activation", min_rank=0)(_same)


def _inplace_negative(a: Args, name: str, value: float, what: str) -> None:
    """PyTorch runs the forward pass but refuses the backward pass of this combination."""
    if a.inplace and value < 0:
        a.warn(f"inplace {name} with a negative {what} ({value}) runs forward, but PyTorch "
               f"refuses its backward pass (training fails); drop inplace", "inplace")


@layer("LeakyReLU", Arg("negative_slope", Float(), 0.01), INPLACE, family="activation",
       min_rank=0)
def leaky_relu(a: Args, x: Shape) -> Shape:
    _inplace_negative(a, "LeakyReLU", a.negative_slope, "negative_slope")
    return x


@layer("ELU", Arg("alpha", Float(), 1.0), INPLACE, family="activation", min_rank=0)
def elu(a: Args, x: Shape) -> Shape:
    _inplace_negative(a, "ELU", a.alpha, "alpha")
    return x


@layer("RReLU", Arg("lower", Float(), 1 / 8), Arg("upper", Float(), 1 / 3), INPLACE,
       family="activation", min_rank=0)
def rrelu(a: Args, x: Shape) -> Shape:
    if a.lower > a.upper:
        raise ShapeError(f"lower {a.lower} must not be greater than upper {a.upper} (the slope "
                         "is drawn from [lower, upper] when training)", "lower")
    return x


@layer("CELU", Arg("alpha", Float(), 1.0), INPLACE, family="activation", min_rank=0)
def celu(a: Args, x: Shape) -> Shape:
    if a.alpha == 0:
        raise ShapeError("CELU alpha cannot be 0 (it computes x / alpha)", "alpha")
    _inplace_negative(a, "CELU", a.alpha, "alpha")
    return x


def _check_range(a: Args) -> None:
    if a.max_val <= a.min_val:
        raise ShapeError(f"max_val {a.max_val} must be greater than min_val {a.min_val}", "max_val")


@layer("Hardtanh", Arg("min_val", Float(), -1.0), Arg("max_val", Float(), 1.0), INPLACE,
       family="activation", min_rank=0)
def hardtanh(a: Args, x: Shape) -> Shape:
    _check_range(a)
    return x


def _shrink(a: Args, x: Shape) -> Shape:
    if a.lambd < 0:
        raise ShapeError(f"lambd must be at least 0, got {a.lambd}", "lambd")
    return x


layer("Softshrink", Arg("lambd", Float(), 0.5), family="activation", min_rank=0)(_shrink)
layer("Hardshrink", Arg("lambd", Float(), 0.5), family="activation", min_rank=0)(_same)


@layer("PReLU", Arg("num_parameters", Int(), 1), Arg("init", Float(), 0.25), family="activation",
       min_rank=0, params=lambda a, x: a.num_parameters)
def prelu(a: Args, x: Shape) -> Shape:
    if a.num_parameters != 1:
        channels = x[0] if x else 1
        if channels != a.num_parameters:
            raise ShapeError(f"num_parameters {a.num_parameters} must be 1 or the number of "
                             f"channels coming in ({channels})", "num_parameters")
    return x


def _softmax(name: str):
    def rule(a: Args, x: Shape) -> Shape:
        if a.dim is None:
            ndim = len(x) + 1
            implicit = 0 if ndim in (0, 1, 3) else 1
            over = "the batch" if implicit == 0 else "dimension 1"
            a.warn(f"{name} without dim: PyTorch picks dim={implicit} for a {ndim}-d input "
                   f"({over}) and warns; write dim explicitly", "dim")
            return x
        if batched_dim(a.dim, len(x)) == -1:
            a.warn(f"{name} over dim {a.dim} normalises across the batch", "dim")
        return x

    return rule


for _name in ("Softmax", "LogSoftmax", "Softmin"):
    layer(_name, Arg("dim", Dim.nullable(), None), family="activation", min_rank=0)(_softmax(_name))


@layer("Softmax2d", family="activation", ranks={3: "C×H×W"})
def softmax2d(a: Args, x: Shape) -> Shape:
    return x


@layer("GLU", Arg("dim", Dim, -1), family="activation", min_rank=0)
def glu(a: Args, x: Shape) -> Shape:
    d = batched_dim(a.dim, len(x))
    if d == -1:
        raise ShapeError("GLU over the batch dimension would halve the batch", "dim")
    if x[d] % 2:
        raise ShapeError(f"GLU halves dimension {a.dim}, which must be even (got {x[d]})", "dim")
    return (*x[:d], x[d] // 2, *x[d + 1:])


_INPLACE = (("inplace", False),)
_SETS_INPLACE = (("inplace", True),)


def _with_inplace(name: str, *params: tuple) -> tuple[FxCall, ...]:
    """F.relu(x, inplace=False) and its in-place spelling F.relu_(x)."""
    return (FxCall(name, (*params, *_INPLACE)), FxCall(f"{name}_", sets=_SETS_INPLACE))


spelled({
    "ReLU": _with_inplace("relu"), "ReLU6": _with_inplace("relu6"),
    "ELU": _with_inplace("elu", ("alpha", 1.0)), "CELU": _with_inplace("celu", ("alpha", 1.0)),
    "SELU": _with_inplace("selu"), "SiLU": (FxCall("silu", _INPLACE),),
    "Mish": (FxCall("mish", _INPLACE),), "Hardswish": (FxCall("hardswish", _INPLACE),),
    "Hardsigmoid": (FxCall("hardsigmoid", _INPLACE),),
    "GELU": (FxCall("gelu", (("approximate", "none"),)),),
    "LeakyReLU": _with_inplace("leaky_relu", ("negative_slope", 0.01)),
    "Hardtanh": _with_inplace("hardtanh", ("min_val", -1.0), ("max_val", 1.0)),
    "Softplus": (FxCall("softplus", (("beta", 1.0), ("threshold", 20.0))),),
    "Softmax": (FxCall("softmax", (("dim", None), ("_stacklevel", 3), ("dtype", None))),),
    "LogSoftmax": (FxCall("log_softmax", (("dim", None), ("_stacklevel", 3), ("dtype", None))),),
    "Sigmoid": (FxCall("sigmoid"),), "Tanh": (FxCall("tanh"),),
    "LogSigmoid": (FxCall("logsigmoid"),), "Softsign": (FxCall("softsign"),),
    "Tanhshrink": (FxCall("tanhshrink"),), "GLU": (FxCall("glu", (("dim", -1),)),),
    "Hardshrink": (FxCall("hardshrink", (("lambd", 0.5),)),),
    "Softshrink": (FxCall("softshrink", (("lambd", 0.5),)),),
})

"""Weight-standardised convolutions: timm's StdConv2d (BiT ResNet-V2) and ScaledStdConv2d
(NFNets, NF-ResNets).

The weight is standardised per output channel before every call (zero mean, unit variance
over in_channels/groups × the kernel, eps added to the variance, by F.batch_norm in
training mode over the weight reshaped 1×out×fan_in) and then convolved as nn.Conv2d's
would be; ScaledStdConv2d scales it by a learnt gain per output channel times
gamma/sqrt(fan_in) as it standardises.  The classes are netspec's own (Code.helper), with
timm's forwards word for word, so their state_dict keys (weight, bias; ScaledStdConv2d's
gain) and their outputs are timm's."""

from __future__ import annotations

import math

from netspec.ops.conv import conv_output
from netspec.ops.declare import (
    Arg,
    Args,
    Bool,
    Code,
    ConvPadding,
    Draw,
    Float,
    Int,
    Shape,
    ShapeError,
    Size,
    Torch,
    fmt,
    layer,
)
from netspec.ops.text import conv_key_args

# as generated files define it; netspec.ops.torch_side builds the same source
# (tests/ops/test_op_std_conv.py holds its forward to timm's)
SCALED_STD_CONV_2D = '''class ScaledStdConv2d(nn.Conv2d):
    """nn.Conv2d with its weight standardised per output channel and scaled by a learnt gain
    times gamma / sqrt(fan-in) at every call (timm's ScaledStdConv2d, NFNets)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, gamma=1.0, eps=1e-6, gain_init=1.0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.scale = gamma * self.weight[0].numel() ** -0.5
        self.eps = eps
        self.gain_init = gain_init
        self.gain = nn.Parameter(torch.full((self.out_channels, 1, 1, 1), float(gain_init)))

    def forward(self, x):
        weight = nn.functional.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,
            None,
            weight=(self.gain * self.scale).view(-1),
            training=True,
            momentum=0.0,
            eps=self.eps,
        ).reshape_as(self.weight)
        return nn.functional.conv2d(
            x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )'''


STD_CONV_2D = '''class StdConv2d(nn.Conv2d):
    """nn.Conv2d with its weight standardised per output channel at every call (timm's
    StdConv2d, BiT)."""

    def __init__(self, in_channel, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=False, eps=1e-6):
        super().__init__(in_channel, out_channels, kernel_size, stride=stride,
                         padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.eps = eps

    def forward(self, x):
        weight = nn.functional.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,
            None,
            training=True,
            momentum=0.0,
            eps=self.eps,
        ).reshape_as(self.weight)
        x = nn.functional.conv2d(
            x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
        return x'''


def _fan_in(a: Args) -> int:
    return _in_channels(a) // a.groups * math.prod(a.tuple("kernel_size", 2))


def _in_channels(a: Args) -> int:
    return a.values.get("in_channels", a.values.get("in_channel"))


def _standardised_output(a: Args, x: Shape) -> Shape:
    """Conv2d's output; a fan-in of one refused as F.batch_norm refuses it in training."""
    if "in_channel" in a.values:  # StdConv2d names it so (timm's): Conv2d's rule reads it
        a = Args({**a.values, "in_channels": a.in_channel}, a.given, a.sources)
    y = conv_output(a, x, 2)
    if _fan_in(a) == 1:
        raise ShapeError("each output channel's weight has one value (in_channels/groups "
                         f"{_in_channels(a) // a.groups} × kernel "
                         f"{fmt(a.tuple('kernel_size', 2))}), and standardising one value is "
                         "what torch's batch_norm refuses: it needs a fan-in of 2 or more",
                         "kernel_size")
    return y


def _params(a: Args, x: Shape) -> int:
    return a.out_channels * (_fan_in(a) + 1) + (a.out_channels if a.bias else 0)


def _std_params(a: Args, x: Shape) -> int:
    return a.out_channels * _fan_in(a) + (a.out_channels if a.bias else 0)


def gamma_of(scale: float, fan_in: int) -> float:
    """The gamma that gives ``scale`` = gamma * fan_in ** -0.5 exactly as the class computes
    it (the quotient, or a neighbouring float where the quotient's rounding misses)."""
    gamma = scale / fan_in ** -0.5
    for candidate in (gamma, math.nextafter(gamma, math.inf), math.nextafter(gamma, -math.inf)):
        if candidate * fan_in ** -0.5 == scale:
            return candidate
    return gamma


def _conv_values(m) -> dict | str:
    if m.padding_mode != "zeros":
        return f"padding_mode {m.padding_mode!r}, which its forward (F.conv2d) does not apply"
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (
        (k, getattr(m, k)) for k in ("out_channels", "kernel_size", "stride", "padding",
                                     "dilation", "groups"))} | {
        "bias": m.bias is not None, "eps": float(m.eps)}


def _read_std(m) -> dict | str:
    """The arguments a StdConv2d was made with: nn.Conv2d's (its first named in_channel, as
    timm names it) and eps."""
    values = _conv_values(m)
    return values if isinstance(values, str) else {"in_channel": m.in_channels, **values}


def _read(m) -> dict | str:
    """The arguments a ScaledStdConv2d was made with: nn.Conv2d's, gamma from its scale."""
    values = _conv_values(m)
    if isinstance(values, str):
        return values
    return {"in_channels": m.in_channels, **values,
            "gamma": gamma_of(float(m.scale), m.weight[0].numel()),
            "gain_init": float(getattr(m, "gain_init", 1.0))}


@layer("ScaledStdConv2d",
       Arg("in_channels", Int(), infer=lambda x: x[0], noun="channels"),
       Arg("out_channels", Int()), Arg("kernel_size", Size(2)), Arg("stride", Size(2), 1),
       Arg("padding", ConvPadding(2), 0), Arg("dilation", Size(2), 1), Arg("groups", Int(), 1),
       Arg("bias", Bool, True), Arg("gamma", Float(), 1.0), Arg("eps", Float(minimum=0), 1e-6),
       Arg("gain_init", Float(), 1.0),
       family="conv", ranks={3: "C×H×W"},
       torch=Torch("netspec.ops.torch_side.ScaledStdConv2d", owns_output=True),
       code=Code(call="ScaledStdConv2d", helper=SCALED_STD_CONV_2D, attribute="conv"),
       draw=Draw(key_args=conv_key_args(2), abbrev="SConv"), read_module=_read,
       params=_params,
       macs=lambda a, x, y: math.prod(y) * _fan_in(a))
def scaled_std_conv_2d(a: Args, x: Shape) -> Shape:
    """timm's ScaledStdConv2d: nn.Conv2d's arguments and output, its weight standardised
    per output channel (eps added to the variance) and scaled by gain * gamma / sqrt(fan_in)
    before each call; a learnt gain (out_channels×1×1×1, starting at gain_init) besides
    weight and bias."""
    return _standardised_output(a, x)


@layer("StdConv2d",
       Arg("in_channel", Int(), infer=lambda x: x[0], noun="channels"),
       Arg("out_channels", Int()), Arg("kernel_size", Size(2)), Arg("stride", Size(2), 1),
       Arg("padding", ConvPadding(2), 0), Arg("dilation", Size(2), 1), Arg("groups", Int(), 1),
       Arg("bias", Bool, False), Arg("eps", Float(minimum=0), 1e-6),
       family="conv", ranks={3: "C×H×W"},
       torch=Torch("netspec.ops.torch_side.StdConv2d", owns_output=True),
       code=Code(call="StdConv2d", helper=STD_CONV_2D, attribute="conv"),
       draw=Draw(key_args=conv_key_args(2), abbrev="WSConv"), read_module=_read_std,
       params=_std_params, macs=lambda a, x, y: math.prod(y) * _fan_in(a))
def std_conv_2d(a: Args, x: Shape) -> Shape:
    """timm's StdConv2d (BiT): nn.Conv2d's arguments and output (timm names the first
    in_channel; bias off by default), its weight standardised per output channel (eps added
    to the variance) before each call; weight and bias, no gain."""
    return _standardised_output(a, x)

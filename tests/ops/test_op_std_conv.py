"""StdConv2d and ScaledStdConv2d (netspec/ops/std_conv.py): timm's weight-standardised
convolutions of BiT and NFNets; their rules against timm's modules, their values, and every
command on them."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import examples
from function_ops import build_and_codegen_agree, import_round_trip, summary_and_render
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import netspec_verdict

import netspec
from netspec.ops.std_conv import gamma_of

timm_layers = pytest.importorskip("timm.layers")

SPEC = """\
netspec: 1
name: Stem
input: [3, 16, 16]
layers:
  - ScaledStdConv2d: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1, gamma: 1.7}
    name: conv
  - SiLU
  - ScaledStdConv2d: {out_channels: 4, kernel_size: 1, bias: false, eps: 1.0e-5}
"""


def timm_verdict(kwargs: dict[str, Any], sample: tuple[int, ...],
                 kind: str = "ScaledStdConv2d") -> tuple | None:
    """timm's module on zeros at batches 2 and 3: the sample shape, or None where it
    refuses (or reads the batch as something else)."""
    torch_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        module = getattr(timm_layers, kind)(**torch_kwargs)
        shapes = {tuple(module(torch.zeros(n, *sample)).shape[1:]) for n in (2, 3)}
    except (RuntimeError, ValueError):
        return None
    shape = shapes.pop()
    return None if shapes or 0 in shape else (shape, sum(p.numel() for p in module.parameters()))


@settings(max_examples=examples(100), deadline=None)
@given(data=st.data())
def test_std_convs_agree_with_timm(data):
    """Accept/refuse, shape and parameter count (gain included) as timm's modules:
    samples of rank 3 (now and then another rank), kernels, strides, paddings (now and then
    too small an input), dilations, groups that divide the channels or not, bias."""
    rank = data.draw(st.sampled_from([3, 3, 3, 3, 2, 4]), label="rank")
    sample = data.draw(st.tuples(st.integers(1, 6), *[st.integers(1, 9)] * (rank - 1)),
                       label="sample")
    kwargs: dict[str, Any] = {
        "in_channels": sample[0], "out_channels": data.draw(st.integers(1, 6), label="out"),
        "kernel_size": data.draw(st.sampled_from([1, 2, 3, [3, 1], [2, 3]]), label="kernel"),
        "padding": data.draw(st.sampled_from([0, 1, [1, 0], "same", "valid"]), label="pad"),
    }
    for name, strategy in (("stride", st.sampled_from([1, 2, [2, 1]])),
                           ("dilation", st.sampled_from([1, 2])),
                           ("groups", st.sampled_from([1, 2, 3])), ("bias", st.booleans()),
                           ("gamma", st.sampled_from([1.0, 1.7])),
                           ("eps", st.sampled_from([1e-6, 1e-4]))):
        if data.draw(st.booleans(), label=f"write {name}"):
            kwargs[name] = data.draw(strategy, label=name)
    kind = data.draw(st.sampled_from(["ScaledStdConv2d", "StdConv2d"]), label="kind")
    if kind == "StdConv2d":  # no gain; timm names its first argument in_channel
        kwargs.pop("gamma", None)
        kwargs["in_channel"] = kwargs.pop("in_channels")
    expected = timm_verdict(kwargs, sample, kind)
    written = {k: v for k, v in kwargs.items() if k not in ("in_channels", "in_channel")}
    got = netspec_verdict(kind, written, sample)
    context = f"{kwargs} on {sample}: timm {expected}, netspec {got}"
    assert got.ok == (expected is not None), context
    if expected is not None:
        assert (got.shape, got.params) == expected, context


def test_refusals_are_conv2d_s():
    text = SPEC.replace("kernel_size: 3,", "kernel_size: 3, groups: 2,")
    (error,) = netspec.check(text).errors
    assert "in_channels 3 is not divisible by groups 2" in error.message, error.message
    line = text.splitlines()[error.line - 1]  # pointing at the groups written
    assert line[error.col - 1:].startswith("2,") and line[:error.col].endswith("groups: 2")
    (error,) = netspec.check(SPEC.replace("kernel_size: 1,", "kernel_size: 9,")).errors
    assert "kernel 9×9 is larger than the padded input 8×8" in error.message, error.message


def test_the_class_computes_timm_s_values_bit_for_bit():
    """Same state_dict keys, the same scale, equal outputs: timm's module and netspec's
    class, at two gammas and with and without bias."""
    from netspec.ops.torch_side import ScaledStdConv2d

    for kwargs in ({"gamma": 1.7, "eps": 1e-5}, {"bias": False, "groups": 2}):
        theirs = timm_layers.ScaledStdConv2d(4, 6, 3, stride=2, padding=1, **kwargs)
        ours = ScaledStdConv2d(4, 6, 3, stride=2, padding=1, **kwargs)
        with torch.no_grad():
            theirs.gain.uniform_(0.5, 2.0)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert ours.scale == theirs.scale and list(ours.state_dict()) == \
            list(theirs.state_dict())
        x = torch.randn(2, 4, 9, 9)
        assert torch.equal(ours(x), theirs(x))


def test_gamma_is_read_back_exactly():
    """The importer reads gamma off timm's scale = gamma * fan_in ** -0.5: the gamma that
    gives the same float."""
    for gamma in (1.0, 1.7, 0.1, 2.5e-3):
        for fan_in in (1, 3, 27, 576, 1152):
            read = gamma_of(gamma * fan_in ** -0.5, fan_in)
            assert read * fan_in ** -0.5 == gamma * fan_in ** -0.5, (gamma, fan_in)


def test_build_codegen_summary_render(tmp_path):
    """Built and generated (the class defined in the file, no timm import), both computing
    timm's modules with the same weights."""
    def reference(m, x):
        first = timm_layers.ScaledStdConv2d(3, 8, 3, stride=2, padding=1, gamma=1.7)
        second = timm_layers.ScaledStdConv2d(8, 4, 1, bias=False, eps=1e-5)
        first.load_state_dict(m.conv.state_dict())
        second.load_state_dict(m[2].state_dict())
        return second(torch.nn.functional.silu(first(x)))

    source = build_and_codegen_agree(SPEC, reference, [torch.randn(2, 3, 16, 16)],
                                     tmp_path, "Stem")
    assert "class ScaledStdConv2d(nn.Conv2d):" in source
    assert "import timm" not in source and "from timm" not in source
    rows, dot = summary_and_render(SPEC)
    assert rows["conv"].params == 8 * 27 + 8 + 8  # weight, bias, gain
    assert rows["conv"].macs == 8 * 8 * 8 * 27
    assert "ScaledStdConv2d" in dot


def test_import_of_timm_s_scaled_std_conv_round_trips():
    model = torch.nn.Sequential(timm_layers.ScaledStdConv2d(3, 8, 3, padding=1, gamma=1.7),
                                torch.nn.SiLU(),
                                timm_layers.ScaledStdConv2d(8, 4, 1, eps=1e-5))
    with torch.no_grad():  # gains other than their start, so that they count
        model[0].gain.uniform_(0.5, 2.0)
    layers = import_round_trip(model, (3, 16, 16), torch.randn(2, 3, 16, 16))
    assert layers[0] == {"ScaledStdConv2d": {"out_channels": 8, "kernel_size": 3,
                                             "padding": 1, "gamma": 1.7}}, layers


def test_torchscript_export_verified(tmp_path):
    from netspec.emit.export import export

    report = export(SPEC, "torchscript", tmp_path / "stem.ts")
    assert report.ok and max(report.differences.values()) <= 1e-5, report.differences


def test_a_fan_in_of_one_is_refused_as_torch_refuses_it():
    (error,) = netspec.check(SPEC.replace("input: [3, 16, 16]", "input: [1, 16, 16]")
                             .replace("kernel_size: 3,", "kernel_size: 1,")).errors
    assert "each output channel's weight has one value (in_channels/groups 1 × kernel 1×1)" \
        in error.message, error.message
    assert timm_verdict({"in_channels": 1, "out_channels": 2, "kernel_size": 1}, (1, 4, 4)) \
        is None


def test_std_conv_computes_timm_s_values_and_round_trips(tmp_path):
    """StdConv2d: bit-equal to timm's, built and generated; imported from timm's, weight
    for weight."""
    from netspec.ops.torch_side import StdConv2d

    theirs = timm_layers.StdConv2d(4, 6, 3, padding=1, bias=True, eps=1e-5)
    ours = StdConv2d(4, 6, 3, padding=1, bias=True, eps=1e-5)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 4, 9, 9)
    assert torch.equal(ours(x), theirs(x))
    model = torch.nn.Sequential(timm_layers.StdConv2d(3, 8, 3, padding=1),
                                torch.nn.ReLU(), timm_layers.StdConv2d(8, 4, 1, bias=True))
    layers = import_round_trip(model, (3, 12, 12), torch.randn(2, 3, 12, 12))
    assert layers[0] == {"StdConv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}}
    spec = SPEC.replace("ScaledStdConv2d: {out_channels: 8, kernel_size: 3, stride: 2, "
                        "padding: 1, gamma: 1.7}", "StdConv2d: {out_channels: 8, "
                        "kernel_size: 3, stride: 2, padding: 1}")

    def reference(m, x):
        first = timm_layers.StdConv2d(3, 8, 3, stride=2, padding=1)
        second = timm_layers.ScaledStdConv2d(8, 4, 1, bias=False, eps=1e-5)
        first.load_state_dict(m.conv.state_dict())
        second.load_state_dict(m[2].state_dict())
        return second(torch.nn.functional.silu(first(x)))

    source = build_and_codegen_agree(spec, reference, [torch.randn(2, 3, 16, 16)],
                                     tmp_path, "Stem")
    assert "class StdConv2d(nn.Conv2d):" in source
    rows, _ = summary_and_render(spec)
    assert rows["conv"].params == 8 * 27

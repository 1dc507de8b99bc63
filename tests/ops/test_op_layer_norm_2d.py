"""LayerNorm2d (netspec/ops/norm.py): torchvision's nn.LayerNorm over the channels of an
N×C×H×W tensor (ConvNeXt's stem, downsampling layers and classifier); its rule against
torchvision's module, and every command on it."""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
from conftest import examples
from function_ops import (
    DTYPES,
    build_and_codegen_agree,
    import_round_trip,
    summary_and_render,
)
from generated import build_weights_for
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import assert_agree
from torch import nn
from torchvision.models.convnext import LayerNorm2d

import netspec
from netspec.emit.codegen import generate

SPEC = """\
netspec: 1
name: Stem
input: [3, 32, 32]
layers:
  - Conv2d: {out_channels: 8, kernel_size: 4, stride: 4}
  - LayerNorm2d: {eps: 1.0e-6}
    name: norm
  - Conv2d: {out_channels: 4, kernel_size: 2, stride: 2}
"""


@settings(max_examples=examples(120))
@given(data=st.data())
def test_layer_norm_2d_agrees_with_torchvision(data):
    """Accept/refuse, shape and parameter count as torchvision's LayerNorm2d: samples of
    every rank (it permutes a 4-d batch only), normalized_shape left out (the channels),
    written as the trailing dims of the permuted H×W×C, now and then wrong or too long;
    eps, elementwise_affine, bias; every dtype."""
    rank = data.draw(st.sampled_from([3, 3, 3, 1, 2, 4]), label="rank")
    x = data.draw(st.tuples(*[st.integers(1, 5)] * rank), label="sample")
    permuted = (*x[1:], x[0])
    kwargs: dict[str, Any] = {}
    written: dict[str, Any] = {}
    k = data.draw(st.integers(0, rank + 1), label="normalized dims")  # 0: left out
    if k == 0:
        kwargs["normalized_shape"] = x[0]  # what netspec infers
    else:
        ns = list(permuted[-k:]) if k <= rank else [2, *permuted]
        if data.draw(st.integers(0, 3), label="perturb") == 0:
            ns[-1] += 1
        value: Any = ns[0] if len(ns) == 1 and data.draw(st.booleans()) else ns
        kwargs["normalized_shape"] = written["normalized_shape"] = value
    for name, strategy in (("eps", st.sampled_from([1e-6, 0.1])),
                           ("elementwise_affine", st.booleans()), ("bias", st.booleans())):
        if data.draw(st.booleans(), label=f"write {name}"):
            kwargs[name] = written[name] = data.draw(strategy, label=name)
    dtype = data.draw(st.sampled_from(["float32", "float32", *DTYPES]), label="dtype")
    assert_agree("LayerNorm2d", kwargs, x, dtype, netspec_args=written or None)


def test_a_wrong_normalized_shape_says_what_it_is_matched_against():
    text = SPEC.replace("{eps: 1.0e-6}", "[7]").replace("[3, 32, 32]", "[3, 32, 64]")
    (error,) = netspec.check(text).errors
    assert error.message.endswith(
        "normalized_shape 7 does not match the trailing dimensions of the input 8×16×8 "
        "(LayerNorm2d's C×H×W input 8×8×16 permuted to H×W×C)"), error.message
    assert (error.line, error.col) == (6, 19)
    (error,) = netspec.check(SPEC.replace("input: [3, 32, 32]", "input: [3, 32]")
                             .replace("Conv2d", "Conv1d")).errors
    assert "expects a C×H×W sample (batch excluded), got 8×8" in error.message, error.message


def test_build_and_every_style_of_generated_code(tmp_path):
    """Built as torchvision's LayerNorm2d; generated code defines the same class (no
    torchvision, no netspec import) in every style, with the same outputs."""
    def reference(m, x):
        norm = LayerNorm2d(8, eps=1e-6)
        norm.load_state_dict(m.norm.state_dict())
        return m[2](norm(m[0](x)))

    inputs = [torch.randn(2, 3, 32, 32), torch.randn(3, 3, 16, 24)]
    source = build_and_codegen_agree(SPEC, reference, inputs, tmp_path, "Stem")
    assert type(netspec.build(SPEC).norm) is LayerNorm2d
    assert "class LayerNorm2d(nn.LayerNorm):" in source and "import torchvision" not in source
    assert "from torchvision" not in source
    unnamed = SPEC.replace("    name: norm\n", "")  # style sequential keeps no names
    for style, text in (("sequential", unnamed), ("add-module", SPEC), ("ordereddict", SPEC)):
        built = netspec.build(text).eval()
        path = tmp_path / f"stem_{style.replace('-', '_')}.py"
        source = generate(text, style)
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        written = module.Stem().eval()
        written.load_state_dict(build_weights_for(written, source, built.state_dict()),
                                strict=True)
        assert isinstance(written[1], module.LayerNorm2d), style
        with torch.no_grad():
            assert torch.equal(written(inputs[1]), built(inputs[1])), style


def test_summary_and_render():
    rows, dot = summary_and_render(SPEC)
    assert rows["norm"].params == 16 and rows["norm"].macs == 0
    assert "LayerNorm2d" in dot and "eps 1e-06" in dot


def test_import_of_torchvision_s_layer_norm_2d_round_trips():
    model = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), LayerNorm2d(8, eps=1e-6),
                          nn.Conv2d(8, 4, 2, stride=2))
    with torch.no_grad():  # not the identity, so that the comparison means something
        model[1].weight.normal_()
        model[1].bias.normal_()
    layers = import_round_trip(model, (3, 32, 32), torch.randn(2, 3, 32, 32))
    assert layers[1] == {"LayerNorm2d": {"eps": 1e-6}}, layers


def test_torchscript_export_verified(tmp_path):
    """(ONNX: specs/zoo/convnext_tiny.yaml in tests/emit/test_export.py.)"""
    from netspec.emit.export import export

    report = export(SPEC, "torchscript", tmp_path / "stem.ts")
    assert report.ok and max(report.differences.values()) <= 1e-5, report.differences

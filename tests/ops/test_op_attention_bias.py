"""AttentionBiasIndex and AttentionBias (netspec/ops/attention_bias.py): the attention
biases of timm's LeViT and EfficientFormer, attention_biases[:, attention_bias_idxs]."""

from __future__ import annotations

import inspect

import pytest
import torch
from conftest import examples
from function_ops import build_and_codegen_agree, import_round_trip, summary_and_render
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec
from netspec.importer.fx import ImportProblem, MetaValuesNeeded, model_to_spec
from netspec.ops import REGISTRY, torch_side
from netspec.ops.attention_bias import offsets, resolution_of

levit = pytest.importorskip("timm.models.levit")
efficientformer = pytest.importorskip("timm.models.efficientformer")

# a 2×3 map and 4 heads: the bias added to attention logits (B×4×6×6)
SPEC = """\
netspec: 1
name: Biased
input: [4, 6, 6]
layers:
  - Parameter: {shape: [4, 6], init: normal}
    name: attention_biases
  - AttentionBiasIndex: {resolution: [2, 3], persistent: false}
    name: attention_bias_idxs
  - AttentionBias: {resolution: [2, 3]}
    from: [attention_biases, attention_bias_idxs]
    name: bias
  - Add:
    from: [input, bias]
"""


def spec(columns: int, heads: int, resolution: tuple, index_resolution: tuple) -> str:
    n = resolution[0] * resolution[1]
    return (SPEC.replace("[4, 6], init", f"[{heads}, {columns}], init")
            .replace("{resolution: [2, 3], persistent",
                     f"{{resolution: {list(index_resolution)}, persistent")
            .replace("AttentionBias: {resolution: [2, 3]}",
                     f"AttentionBias: {{resolution: {list(resolution)}}}")
            .replace("input: [4, 6, 6]", f"input: [{heads}, {n}, {n}]"))


@st.composite
def case(draw):
    """A map, heads, a table of the columns it needs (now and then fewer or more), and the
    index of that map or, now and then, of another."""
    h, w, heads = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    columns = h * w + draw(st.sampled_from([0, 0, 0, -1, 1, 3]))
    index_resolution = (h, w)
    if draw(st.integers(0, 3)) == 0:
        index_resolution = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    return max(columns, 1), heads, (h, w), index_resolution


@settings(max_examples=examples(100), deadline=None)
@given(drawn=case())
def test_attention_bias_agrees_with_torch(drawn):
    """netspec accepts exactly when torch's table[:, index] (index: timm's LeViT index of
    the index map) runs and gives the heads×N×N bias of the map of the resolution written,
    with that shape; the index is LeViT's attention_bias_idxs."""
    columns, heads, resolution, index_resolution = drawn
    n = resolution[0] * resolution[1]
    table = torch.zeros(heads, columns)
    index = levit.Attention(8, 4, heads, resolution=index_resolution).attention_bias_idxs
    try:
        theirs = tuple(table[:, index].shape)
    except IndexError:
        theirs = None
    if theirs != (heads, n, n):
        theirs = None
    result = netspec.check(spec(columns, heads, resolution, index_resolution))
    ours = {r.name: r.output_shape for r in result.layers} if result.ok else None
    assert (ours["bias"] if ours else None) == theirs, (drawn, result.errors)
    warned = any("reads only the first" in d.message for d in result.warnings)
    assert warned == (result.ok and columns > n)


@settings(max_examples=examples(30), deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7))
def test_the_index_is_timm_s(h, w):
    """Both models' index buffers, built by torch and in plain Python, and read back as the
    resolution that makes them."""
    theirs = levit.Attention(8, 4, 2, resolution=(h, w)).attention_bias_idxs
    other = efficientformer.Attention(16, 4, 2, resolution=(h, w)).attention_bias_idxs
    ours = torch_side.attention_bias_index(h, w)
    assert torch.equal(ours, theirs) and torch.equal(ours, other) and ours.dtype == torch.int64
    assert offsets(h, w) == theirs.tolist()
    found = resolution_of(theirs.tolist())
    assert found is not None and offsets(*found[0], found[1]) == theirs.tolist()
    assert resolution_of([[0, 1], [1, 1]]) is None


@settings(max_examples=examples(30), deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), stride=st.integers(2, 3))
def test_the_downsampling_index_is_levit_s(h, w, stride):
    """stride: LeViT's AttentionDownsample, its queries every stride-th row and column; the
    bias is its get_attention_biases()."""
    module = levit.AttentionDownsample(8, 16, 4, num_heads=2, stride=stride,
                                       resolution=(h, w))
    module.train()
    theirs = module.attention_bias_idxs
    args = REGISTRY["AttentionBiasIndex"].read_buffer(theirs.tolist(), False)
    assert args is not None and args["persistent"] is False
    ours = torch_side.make_buffer("AttentionBiasIndex", args)
    assert torch.equal(ours, theirs)
    with torch.no_grad():
        module.attention_biases.normal_()
        assert torch.equal(torch_side.attention_bias(module.attention_biases, ours),
                           module.get_attention_biases(ours.device))
    queries = ((h + stride - 1) // stride) * ((w + stride - 1) // stride)
    text = (spec(h * w, 2, (h, w), (h, w))
            .replace("persistent: false}", f"persistent: false, stride: {stride}}}")
            .replace(f"AttentionBias: {{resolution: {[h, w]}}}",
                     f"AttentionBias: {{resolution: {[h, w]}, stride: {stride}}}")
            .replace(f"input: [2, {h * w}, {h * w}]", f"input: [2, {queries}, {h * w}]"))
    result = netspec.check(text)
    assert result.ok and result.output_shape == (2, queries, h * w), \
        [d.message for d in result.errors]
    if queries != h * w:  # the bias read without the stride: the index does not fit
        (error,) = netspec.check(text.replace(f"stride: {stride}}}\n    from",
                                              "stride: 1}\n    from")).errors
        assert f"must be {h * w}×{h * w}: an offset for every pair" in error.message, \
            error.message


def test_refusals_name_the_numbers():
    errors = netspec.check(spec(5, 4, (2, 3), (2, 3))).errors
    assert "the table 4×5 from 'attention_biases' must be heads×6: a column for each of the " \
        "2·3 offsets of a 2×3 map" in errors[0].message, [d.message for d in errors]
    errors = netspec.check(spec(6, 4, (2, 3), (2, 2))).errors
    assert "the index 4×4 from 'attention_bias_idxs' must be 6×6" in errors[0].message, \
        [d.message for d in errors]


def test_generated_files_define_what_build_runs():
    for op, function in (("AttentionBiasIndex", torch_side.attention_bias_index),
                         ("AttentionBias", torch_side.attention_bias)):
        assert inspect.getsource(function).rstrip() == REGISTRY[op].code.helper


def test_build_codegen_summary_render_against_timm(tmp_path):
    """The bias is LeViT's get_attention_biases(); a non-persistent index is no state_dict
    key (LeViT's), a persistent one is (EfficientFormer's)."""
    reference = levit.Attention(16, 4, 4, resolution=(2, 3))
    reference.train()  # no cache (its train() returns None)
    model = netspec.build(SPEC)
    assert list(model.state_dict()) == ["attention_biases"]
    assert model.attention_bias_idxs.dtype == torch.int64
    model.load_state_dict({"attention_biases": reference.attention_biases}, strict=True)
    with torch.no_grad():
        model.attention_biases.normal_()
        reference.attention_biases.copy_(model.attention_biases)
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert torch.equal(model(x), x + reference.get_attention_biases(x.device))
    source = build_and_codegen_agree(
        SPEC, lambda m, x: x + m.attention_biases[:, m.attention_bias_idxs], [x], tmp_path,
        "Biased")
    assert 'self.register_buffer("attention_bias_idxs", attention_bias_index(2, 3), ' \
        "persistent=False)" in source, source
    persistent = netspec.build(SPEC.replace(", persistent: false", ""))
    assert list(persistent.state_dict()) == ["attention_biases", "attention_bias_idxs"]
    rows, dot = summary_and_render(SPEC)
    assert rows["attention_biases"].params == 24
    assert rows["attention_bias_idxs"].buffers == 36 and rows["attention_bias_idxs"].params == 0
    assert "2×3" in dot


class Biased(nn.Module):
    """x + attention_biases[:, attention_bias_idxs], as LeViT's attention adds it."""

    def __init__(self, index: torch.Tensor, persistent: bool):
        super().__init__()
        self.attention_biases = nn.Parameter(torch.randn(3, 6))
        self.register_buffer("attention_bias_idxs", index, persistent=persistent)

    def forward(self, x):
        return x + self.attention_biases[:, self.attention_bias_idxs]


def test_import_round_trips_persistent_or_not():
    for persistent in (True, False):
        model = nn.Sequential(Biased(levit.Attention(8, 4, 3, resolution=(3, 2))
                                     .attention_bias_idxs, persistent))
        layers = import_round_trip(model, (3, 6, 6), torch.randn(2, 3, 6, 6))
        index = {"AttentionBiasIndex": {"resolution": [3, 2]} if persistent else
                 {"resolution": [3, 2], "persistent": False}}
        assert layers[0]["layers"][1] == {**index, "name": "attention_bias_idxs"}, layers
        assert layers[0]["layers"][2]["AttentionBias"] == {"resolution": [3, 2]}, layers


def test_import_of_efficientformer_s_attention_round_trips():
    model = nn.Sequential(efficientformer.Attention(dim=32, key_dim=8, num_heads=2,
                                                    attn_ratio=2, resolution=(2, 3)))
    with torch.no_grad():
        model[0].attention_biases.normal_()
    import_round_trip(model, (6, 32), torch.randn(2, 6, 32))


def test_a_buffer_no_op_makes_is_refused_by_name():
    model = nn.Sequential(Biased(torch.randint(0, 6, (6, 6)), True))
    with pytest.raises(ImportProblem) as info:
        model_to_spec(model, (3, 6, 6))
    assert "its buffer 'attention_bias_idxs' (6×6, int64) holds values that no netspec op " \
        "makes (ops that make buffers: AttentionBiasIndex, ConstantBuffer, " \
        "RelativePositionIndex)" in \
        str(info.value), info.value


def test_a_model_made_on_the_meta_device_is_made_again(monkeypatch):
    """Its buffers have no values to read: the importer says so, and import_target makes
    the model again with its tensors."""
    from netspec.pipeline import imported

    def make(meta: bool = True):
        with torch.device("meta" if meta else "cpu"):
            return nn.Sequential(Biased(levit.Attention(8, 4, 3, resolution=(3, 2))
                                        .attention_bias_idxs, False))

    with pytest.raises(MetaValuesNeeded):
        model_to_spec(make(), (3, 6, 6))
    monkeypatch.setattr(imported, "make_model", lambda target, kwargs, meta=True: make(meta))
    text, _, result = imported.import_target("biased:make", None, (3, 6, 6))
    assert result.ok and "AttentionBiasIndex: {resolution: [3, 2], persistent: false}" in text


def test_torchscript_export(tmp_path):
    from netspec.emit.export import export

    report = export(SPEC, "torchscript", tmp_path / "biased.ts")
    assert report.ok and len(report.differences) == 2, report

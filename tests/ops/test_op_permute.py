"""Permute, a function op of one input (torch.permute), added by its declaration
(netspec/ops/tensor.py): its rule against torch, and every command on it."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from test_differential_merge import BATCH
from torch import nn

import netspec
from netspec.emit.codegen import StyleError, generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import dumps, model_to_spec
from netspec.ops import REGISTRY, Args, ShapeError

SPEC = """\
netspec: 1
name: PermNet
input: [5, 8]
layers:
  - Linear: {out_features: 6}
    name: proj
  - Permute: {dims: [0, 2, 1]}
    name: swap
  - Linear: {out_features: 3}
    name: head
"""


def netspec_rule(shape, dims):
    a = Args({"dims": list(dims)}, {"dims"})
    try:
        return tuple(REGISTRY["Permute"].rule(a, tuple(shape))), None
    except ShapeError as exc:
        assert exc.arg == "dims"
        return None, exc.message


def torch_rule(shape, dims):
    try:
        out = torch.permute(torch.zeros(BATCH, *shape), tuple(dims))
    except (RuntimeError, IndexError, ValueError):
        return None
    return tuple(out.shape[1:]) if out.shape[:1] == (BATCH,) else "batch changed"


@st.composite
def shape_and_dims(draw):
    """A sample shape of distinct sizes (so a moved batch shows) and dims: often a valid
    permutation of the batched rank, sometimes negated, miscounted, out of range or repeated."""
    rank = draw(st.integers(0, 4))
    shape = tuple(draw(st.permutations(range(3, 3 + rank))))
    full = rank + 1
    dims = list(draw(st.permutations(range(full))))
    if draw(st.booleans()):
        dims = [0, *draw(st.permutations(range(1, full)))]
    dims = [d - full if draw(st.booleans()) else d for d in dims]
    how = draw(st.sampled_from(["valid", "valid", "count", "range", "repeat", "any"]))
    if how == "count":
        dims = dims[:-1] if dims and draw(st.booleans()) else [*dims, draw(st.integers(0, full))]
    elif how == "range":
        dims[draw(st.integers(0, full - 1))] = draw(st.sampled_from([full, -full - 1, full + 2]))
    elif how == "repeat" and full > 1:
        i, j = draw(st.permutations(range(full)))[:2]
        dims[i] = dims[j]
    elif how == "any":
        dims = draw(st.lists(st.integers(-6, 6), min_size=1, max_size=6))
    return shape, dims


@settings(max_examples=examples(300))
@given(case=shape_and_dims())
def test_permute_agrees_with_torch(case):
    shape, dims = case
    ours, why = netspec_rule(shape, dims)
    theirs = torch_rule(shape, dims)
    if ours is None and theirs is not None:
        # DELIBERATE, as Concat's dim 0: moving the batch is refused (the batch size is not
        # part of the spec); torch accepts it as a valid permutation of the batched tensor
        assert dims[0] % (len(shape) + 1) != 0 and "moves the batch" in why, (case, why)
        return
    assert ours == theirs, (case, ours, theirs, why)


@pytest.mark.parametrize(("dims", "message"), [
    ([0, 1], "dims [0, 1] has 2 entries, but the input has 3 dimensions (batch included: "
             "N×5×6)"),
    ([0, 2, 3], "dims [0, 2, 3]: 3 is out of range for a 3-d input (batch included); "
                "expected values in [-3, 2]"),
    ([0, 1, -2], "dims [0, 1, -2] names dimension 1 more than once"),
    ([1, 0, 2], "dims [1, 0, 2] moves the batch dimension (dims[0] is 1)"),
])
def test_refusals_point_at_dims(dims, message):
    result = netspec.check(SPEC.replace("[0, 2, 1]", str(dims)))
    errors = [d for d in result.errors if "swap" in d.message]
    assert len(errors) == 1 and message in errors[0].message, result.errors
    assert (errors[0].line, errors[0].col) == (7, 21)  # the dims value


def test_negative_dims_and_minus_rank_batch():
    assert netspec_rule((5, 6), [-3, -1, -2]) == ((6, 5), None)
    assert netspec_rule((4, 5, 6), [0, 3, 1, 2]) == ((6, 4, 5), None)
    assert netspec_rule((), [0]) == ((), None)


def test_build_is_torch_permute_without_modules():
    model = netspec.build(SPEC).eval()
    assert isinstance(model, torch.fx.GraphModule)
    assert [k for k in model.state_dict() if k.startswith("swap")] == []
    assert not hasattr(model, "swap")
    calls = [n for n in model.graph.nodes if n.op == "call_function"]
    assert [n.target for n in calls] == [torch.permute]
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        assert torch.equal(model(x), model.head(torch.permute(model.proj(x), (0, 2, 1))))


def test_summary_render_and_codegen(tmp_path):
    result = netspec.check(SPEC)
    assert result.ok and result.output_shape == (6, 3)
    rows = {r.name: r for r in summarize(result).rows}
    assert rows["swap"].params == 0 and rows["swap"].macs == 0
    assert "Permute" in to_dot(result) and "dims (0, 2, 1)" in to_dot(result)
    with pytest.raises(StyleError, match="is a function called in forward"):
        generate(result, "sequential")
    source = generate(result, "class")
    assert "x = torch.permute(x, (0, 2, 1))" in source and "self.swap" not in source
    path = tmp_path / "permnet.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("permnet", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["permnet"] = module
    spec.loader.exec_module(module)
    generated, built = module.PermNet().eval(), netspec.build(result).eval()
    assert generated.state_dict().keys() == built.state_dict().keys()
    generated.load_state_dict(built.state_dict())
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        assert torch.equal(generated(x), built(x))


class Swap(nn.Module):
    def __init__(self, spelling: int):
        super().__init__()
        self.proj = nn.Linear(8, 6)
        self.head = nn.Linear(5, 3)
        self.spelling = spelling

    def forward(self, x):
        x = self.proj(x)
        if self.spelling == 0:
            x = x.permute(0, 2, 1)
        elif self.spelling == 1:
            x = x.permute((0, 2, 1))
        else:
            x = torch.permute(x, (0, 2, 1))
        return self.head(x)


@pytest.mark.parametrize("spelling", [0, 1, 2])
def test_import_round_trip(spelling):
    reference = Swap(spelling).eval()
    imported = model_to_spec(reference, (5, 8))
    assert imported.data["layers"][1] == {"Permute": {"dims": [0, 2, 1]}, "name": "permute"}
    model = netspec.build(dumps(imported.data)).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_onnx_export_verified_in_onnxruntime(tmp_path, capsys):
    from netspec.cli import main

    spec = tmp_path / "permnet.yaml"
    spec.write_text(SPEC)
    assert main(["export", str(spec), "-o", str(tmp_path / "permnet.onnx")]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out


def test_list_form_is_dims_as_in_x_permute():
    """`Permute: [0, 2, 1]` reads as `x.permute(0, 2, 1)`: the list is dims (PyTorch's
    *dims), not three positional arguments; check, build and codegen agree with the
    mapping form, and mistakes point at the item."""
    listed = SPEC.replace("{dims: [0, 2, 1]}", "[0, 2, 1]")
    assert listed != SPEC
    a, b = netspec.check(SPEC), netspec.check(listed)
    assert a.ok and b.ok, b.errors
    assert [r.output_shape for r in a.layers] == [r.output_shape for r in b.layers]
    assert [r.kwargs for r in a.layers] == [r.kwargs for r in b.layers]
    assert generate(listed) == generate(SPEC)
    x = torch.randn(2, 5, 8)
    torch.manual_seed(0)
    one = netspec.build(SPEC).eval()
    torch.manual_seed(0)
    two = netspec.build(listed).eval()
    with torch.no_grad():
        assert torch.equal(one(x), two(x))
    bad = netspec.check(listed.replace("[0, 2, 1]", "[0, 2, 9]"))
    assert [d.message.split(": ", 1)[1] for d in bad.errors] == [
        "dims [0, 2, 9]: 9 is out of range for a 3-d input (batch included); expected values "
        "in [-3, 2]"]
    empty = netspec.check(listed.replace("[0, 2, 1]", "[]"))
    assert [d.message.split(": ", 1)[1] for d in empty.errors] == [
        "dims must have at least 1 entry, got 0"]
    word = netspec.check(listed.replace("[0, 2, 1]", "[0, x, 1]"))
    assert len(word.errors) == 1 and "dims must be a list of dimension indices" in \
        word.errors[0].message


def test_a_channels_last_linear_warns_only_without_in_features():
    """After a Permute to channels last (ConvNeXt's blocks), a Linear that writes its
    in_features means the last dimension: no missing-Flatten warning; without it, the
    warning says how to mean it."""
    text = ("netspec: 1\ninput: [8, 4, 4]\nlayers:\n  - Permute: [0, 2, 3, 1]\n"
            "  - Linear: {out_features: 16}\n")
    (warning,) = netspec.check(text).warnings
    assert "Linear acts on the last dimension only" in warning.message
    assert warning.message.endswith("where the last dimension is meant, write in_features: 8")
    meant = netspec.check(text.replace("{out_features", "{in_features: 8, out_features"))
    assert meant.ok and not meant.warnings

"""Reshape and View (netspec/ops/tensor.py): x.reshape(shape) / x.view(shape) with shape
counting the batch, 0 keeping the size the input has at that position, -1 inferred; the
rule against torch, the run-time sizes of the built model and generated code, import."""

from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import examples
from function_ops import (
    DTYPES,
    Calls,
    build_and_codegen_agree,
    compare,
    import_round_trip,
    summary_and_render,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec
from netspec.emit.codegen import StyleError, generate

SPEC = """\
netspec: 1
name: Heads
input: [6, 16]
layers:
  - Linear: {out_features: 16}
    name: proj
  - Reshape: {shape: [0, 0, 4, -1]}
    name: split
  - Permute: {dims: [0, 2, 1, 3]}
  - Reshape: {shape: [0, 4, -1]}
    name: merge
  - View: {shape: [-1, 4, 24]}
    name: flat
"""


def torch_reshape(method: str, shape: list[int]):
    """What the op stands for: 0 is the size the input has at that position."""
    def fn(x):
        sizes = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return getattr(x, method)(*sizes)
    return fn


@st.composite
def shape_and_target(draw):
    """A sample and a target shape: often a refactoring of its element count (with 0s where
    the sizes line up, one -1), sometimes miscounted, with a fixed batch, 0s past the rank,
    or two -1s."""
    sample = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    full = (2, *sample)
    elements = math.prod(sample)
    factors = []
    rest = elements
    for p in (2, 3, 5):
        while rest % p == 0:
            factors.append(p)
            rest //= p
    factors += [rest] if rest > 1 else []
    factors = draw(st.permutations(factors))
    cut = sorted(draw(st.lists(st.integers(0, len(factors)), max_size=3)))
    parts = [math.prod(factors[i:j]) for i, j in zip([0, *cut], [*cut, len(factors)],
                                                     strict=True)]
    target = [draw(st.sampled_from([0, 0, -1, 2]))] + parts
    for i in range(1, len(target)):
        if i < len(full) and full[i] == target[i] and draw(st.booleans()):
            target[i] = 0
    if len(target) > 1 and -1 not in target and draw(st.booleans()):
        target[draw(st.integers(1, len(target) - 1))] = -1
    how = draw(st.sampled_from(["valid", "valid", "count", "count", "zero", "two", "any"]))
    sized = [i for i, t in enumerate(target) if i > 0 and t > 1]
    if how == "count" and sized and draw(st.booleans()):
        i = draw(st.sampled_from(sized))
        target[i] = draw(st.integers(1, target[i] - 1))  # fewer elements, often not a factor
    elif how == "count":
        target.append(draw(st.integers(2, 3)))  # more
    elif how == "zero":
        target.append(0)
    elif how == "two":
        target += [-1, -1]
    elif how == "any":
        target = draw(st.lists(st.integers(-1, 6), min_size=1, max_size=6))
    return sample, target


@settings(max_examples=examples(150))
@given(case=shape_and_target(), method=st.sampled_from(["Reshape", "View"]),
       dtype=st.sampled_from(DTYPES))
def test_reshape_agrees_with_torch(case, method, dtype):
    sample, target = case
    (ours, our_dtype, why), (theirs, their_dtype, their_why) = compare(
        method, {"shape": target}, sample, torch_reshape(method.lower(), target), dtype)
    if ours is None and theirs is not None:
        # DELIBERATE: a fixed batch size (shape[0] > 0) works in torch only at that batch,
        # which the oracle's two batch sizes never both are, so this cannot happen
        pytest.fail(f"netspec refuses what torch accepts: {case} ({why})")
    assert ours == theirs, (case, why, their_why)
    assert our_dtype == their_dtype


@pytest.mark.parametrize(("shape", "message"), [
    ([0, 4, 5], "shape [0, 4, 5] holds 20 elements per sample, but the input N×6×16 has 96"),
    ([0, -1, 5], "shape [0, -1, 5]: a sample of 6×16 has 96 elements, not divisible by the "
                 "5 of the known sizes"),
    ([0, -1, -1], "shape [0, -1, -1] has 2 entries -1; only one size can be inferred"),
    ([0, 0, 0, 0], "shape [0, 0, 0, 0]: shape[3] is 0 (the size of dim 3 as it comes in), "
                   "but the input has 3 dimensions (batch included: N×6×16)"),
    ([2, 6, 16], "shape[0] is 2, a fixed batch size"),
    ([-1, 6, 8], "shape [-1, 6, 8] infers the batch (shape[0] is -1) from the element count, "
                 "but 6×8 holds 48 elements and a sample of 6×16 96: torch would make the batch "
                 "N×96/48"),
])
def test_refusals_point_at_shape(shape, message):
    text = SPEC.replace("[0, 0, 4, -1]", str(shape))
    result = netspec.check(text)
    errors = [d for d in result.errors if "split" in d.message]
    assert len(errors) == 1 and message in errors[0].message, result.errors
    assert (errors[0].line, errors[0].col) == (7, 22)  # the shape value


def test_the_list_form_is_the_shape():
    """Reshape: [0, 0, 4, -1] reads as x.reshape(0, 0, 4, -1): the shape is varargs."""
    listed = netspec.check(SPEC.replace("Reshape: {shape: [0, 0, 4, -1]}",
                                        "Reshape: [0, 0, 4, -1]"))
    assert listed.ok and listed.layers[1].output_shape == (6, 4, 4)


def test_the_check_table():
    result = netspec.check(SPEC)
    assert result.ok, result.errors
    assert [r.output_shape for r in result.layers] == [(6, 16), (6, 4, 4), (4, 6, 4), (4, 24),
                                                       (4, 24)]


def test_build_and_codegen_read_the_kept_sizes_when_they_run(tmp_path):
    """0 and -1 are read from the tensor: the model runs at another length (a -1 batch
    with fixed sample sizes does not, as in torch), and the generated code says so."""
    spec = SPEC.replace("  - View: {shape: [-1, 4, 24]}\n    name: flat\n", "")

    def reference(model, x):
        y = model.proj(x)
        y = y.reshape(y.shape[0], y.shape[1], 4, -1).permute(0, 2, 1, 3)
        return y.reshape(y.shape[0], 4, -1)

    source = build_and_codegen_agree(spec, reference, [torch.randn(2, 6, 16),
                                                       torch.randn(3, 11, 16)],
                                     tmp_path, "Heads")
    assert "x = x.reshape(x.shape[0], x.shape[1], 4, -1)  # -> 6×4×4" in source
    assert "x = x.reshape(x.shape[0], 4, -1)" in source
    with_view = build_and_codegen_agree(
        SPEC, lambda m, x: reference(m, x).view(-1, 4, 24), [torch.randn(2, 6, 16)], tmp_path,
        "Heads")
    assert "x = x.view(-1, 4, 24)" in with_view
    model = netspec.build(SPEC)
    assert not any(k.startswith(("split", "merge", "flat")) for k in model.state_dict())
    assert [n.target for n in model.graph.nodes if n.op == "call_method"] == [
        "size", "size", "reshape", "size", "reshape", "view"]


def test_a_view_after_a_permute_fails_in_torch_as_documented():
    """Not modelled (View's docstring): the stride condition; torch refuses it at run time."""
    spec = SPEC.replace("Reshape: {shape: [0, 4, -1]}", "View: {shape: [0, 4, -1]}")
    assert netspec.check(spec).ok
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        netspec.build(spec)(torch.randn(2, 6, 16))


def test_summary_render_and_sequential_styles():
    rows, dot = summary_and_render(SPEC)
    assert rows["split"].params == 0 and rows["split"].macs == 0
    assert "Reshape" in dot and "shape (0, 0, 4, -1)" in dot and "View" in dot
    with pytest.raises(StyleError, match="is a function called in forward"):
        generate(netspec.check(SPEC), "sequential")


def _heads(m, x):
    x = m.proj(x)
    b, n, c = x.shape
    x = x.reshape(b, n, 4, c // 4).permute(0, 2, 1, 3)
    return x.reshape(x.size(0), 4, -1)


SPELLINGS = [
    (_heads, [{"Reshape": {"shape": [0, 0, 4, -1]}}, {"Permute": {"dims": [0, 2, 1, 3]}},
              {"Reshape": {"shape": [0, 4, -1]}}]),
    (lambda m, x: torch.reshape(m.proj(x), (x.shape[0], 2, -1)),
     [{"Reshape": {"shape": [0, 2, -1]}}]),
    (lambda m, x: m.proj(x).view(-1, 96), [{"View": {"shape": [-1, 96]}}]),
    (lambda m, x: m.proj(x).view(x.size(0), -1), [{"Flatten": None}]),
    (lambda m, x: m.proj(x).view(size=(x.size(0), 3, 32)), [{"View": {"shape": [0, 3, 32]}}]),
    # sizes of the input at other positions: the same elements regrouped, 6×16 as 16×6
    # (the 16 is proj's, fixed; the 6 follows the input: -1)
    (lambda m, x: m.proj(x).reshape(x.shape[0], x.shape[2], x.shape[1]),
     [{"Flatten": {"end_dim": 2}}, {"Unflatten": {"dim": 1, "unflattened_size": [16, -1]}}]),
]


@pytest.mark.parametrize(("body", "entries"), SPELLINGS)
def test_import_round_trip(body, entries):
    layers = import_round_trip(Calls(body, proj=nn.Linear(16, 16)), (6, 16),
                               torch.randn(2, 6, 16))
    assert [{k: v for k, v in e.items() if k != "name"} for e in layers[1:]] == entries


@pytest.mark.parametrize(("body", "why"), [
    (lambda m, x: m.proj(x).view(2, 6, 16), "shape[0] is 2, a fixed batch size"),  # check's
    # sizes computed in forward that move elements into the batch: neither a Reshape
    # (sizes the input has at the same positions) nor flattens and unflattens
    (lambda m, x: m.proj(x).reshape(x.shape[0] * 2, x.shape[1] // 2, x.shape[2]),
     "into or out of the batch"),
    (lambda m, x: m.proj(x).view(torch.float16), "reshapes to [torch.float16]"),
    # timm's TNT folds its patches into the batch: x.reshape(B * num_patches, ...)
    (lambda m, x: m.proj(x).reshape(x.shape[0] * 2, 3, 16),
     "computing the batch size in forward: it folds other dimensions into the batch"),
])
def test_import_refuses_what_it_cannot_express(body, why):
    from netspec.core.diagnostics import SpecError
    from netspec.importer.fx import ImportProblem

    with pytest.raises((ImportProblem, SpecError), match=re.escape(why)):
        import_round_trip(Calls(body, proj=nn.Linear(16, 16)), (6, 16), torch.randn(2, 6, 16))


def test_onnx_export_verified_in_onnxruntime(tmp_path, capsys):
    """The sizes read in forward export as shape reads: the dynamic batch still verifies."""
    from netspec.cli import main

    spec = tmp_path / "heads.yaml"
    spec.write_text(SPEC)
    assert main(["export", str(spec), "-o", str(tmp_path / "heads.onnx")]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out

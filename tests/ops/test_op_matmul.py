"""Matmul (torch.matmul, x @ y), a function op of two inputs declared in
netspec/ops/merge.py: its rule, dtypes and MACs against torch, and every command on it."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import dumps, model_to_spec
from netspec.ops import REGISTRY, Args, ShapeError

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32")
BATCHES = (2, 3)


def torch_verdict(shapes, dtypes):
    """(sample shape, dtype, MACs per sample) of torch.matmul at batches 2 and 3, or None
    where it raises or where the sample shape depends on the batch."""
    seen = set()
    for n in BATCHES:
        tensors = [torch.ones(n, *s, dtype=getattr(torch, d))
                   for s, d in zip(shapes, dtypes, strict=True)]
        try:
            with FlopCounterMode(display=False) as counter:
                out = torch.matmul(*tensors)
        except RuntimeError:
            return None
        if out.shape[:1] != (n,):
            return None
        flops = counter.get_total_flops()
        seen.add((tuple(out.shape[1:]), str(out.dtype).removeprefix("torch."),
                  flops / (2 * n)))
    return seen.pop() if len(seen) == 1 else None


def netspec_verdict(shapes, dtypes):
    lt = REGISTRY["Matmul"]
    a = Args.filled(lt, {}, [f"input {i}" for i in range(2)])
    try:
        out = tuple(lt.rule(a, list(shapes)))
    except ShapeError as exc:
        return None, exc.message
    if len(set(dtypes)) > 1:  # what infer says of an op without a dtype rule
        return None, "inputs have different dtypes"
    return (out, dtypes[0], lt.macs(a, list(shapes), out)), None


@st.composite
def matmul_case(draw):
    """Two samples, mostly a valid pair (equal ranks >= 2, inner sizes equal, batch dims
    equal or 1), then sometimes a rank, inner size or batch dim changed."""
    rank = draw(st.integers(2, 4))
    lead = draw(st.lists(st.integers(1, 3), min_size=rank - 2, max_size=rank - 2))
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    left = [*(1 if draw(st.integers(0, 3)) == 0 else d for d in lead), n, k]
    right = [*(1 if draw(st.integers(0, 3)) == 0 else d for d in lead), k, m]
    how = draw(st.sampled_from(["valid", "valid", "inner", "lead", "rank", "vector"]))
    if how == "inner":
        right[-2] = draw(st.integers(1, 5))
    elif how == "lead" and rank > 2:
        left[draw(st.integers(0, rank - 3))] = draw(st.integers(1, 4))
    elif how == "rank":
        side = left if draw(st.booleans()) else right
        if draw(st.booleans()):
            side.insert(0, draw(st.integers(1, 3)))
        else:
            del side[0]
    elif how == "vector":
        shape = left if draw(st.booleans()) else right
        del shape[: len(shape) - draw(st.integers(0, 1))]
    first = draw(st.sampled_from(DTYPES))
    dtypes = [first, first if draw(st.integers(0, 3)) else draw(st.sampled_from(DTYPES))]
    return [tuple(left), tuple(right)], dtypes


@settings(max_examples=examples(150))
@given(case=matmul_case())
def test_matmul_agrees_with_torch(case):
    """netspec refuses exactly when torch raises or multiplies across the batch (a sample of
    fewer than 2 dims, or ranks that differ); else its shape, dtype and MACs are torch's
    (MACs: FlopCounterMode's count, halved, per sample)."""
    shapes, dtypes = case
    ours, why = netspec_verdict(shapes, dtypes)
    theirs = torch_verdict(shapes, dtypes)
    assert ours == theirs, (shapes, dtypes, ours, theirs, why)


SPEC = """\
netspec: 1
name: Scores
input: [4, 6, 8]
layers:
  - Linear: {out_features: 8}
    name: q
  - Linear: {out_features: 8}
    name: k
    from: input
  - Permute: {dims: [0, 1, 3, 2]}
    name: kt
  - Matmul:
    from: [q, kt]
    name: scores
  - Softmax: {dim: -1}
    name: weights
  - Matmul:
    from: [weights, input]
    name: mixed
"""


def test_check_summary_render():
    result = netspec.check(SPEC)
    assert result.ok and result.output_shape == (4, 6, 8)
    rows = {r.name: r for r in summarize(result).rows}
    assert rows["scores"].params == 0 and rows["scores"].macs == 4 * 6 * 6 * 8
    assert rows["mixed"].macs == 4 * 6 * 8 * 6
    assert "Matmul" in to_dot(result)


@pytest.mark.parametrize(("change", "message"), [
    ("dims: [0, 1, 2, 3]", "cannot multiply 4×6×8 from 'q' by 4×6×8 from 'kt': the left "
                           "matrices have 8 columns, the right ones 6 rows"),
    ("out_features: 8}\n    name: k", None),
])
def test_refusals_name_both_inputs(change, message):
    if message is None:  # a rank that differs
        spec = SPEC.replace("  - Permute: {dims: [0, 1, 3, 2]}", "  - Flatten: {start_dim: 2}")
        message = ("cannot multiply 4×6×8 from 'q' by 4×48 from 'kt': samples of 3 and 2 dims; "
                   "torch.matmul would broadcast the batch of the smaller")
    else:
        spec = SPEC.replace("dims: [0, 1, 3, 2]", change)
    errors = [d.message for d in netspec.check(spec).errors]
    assert len(errors) == 1 and message in errors[0], errors


def test_build_and_codegen(tmp_path):
    result = netspec.check(SPEC)
    model = netspec.build(result).eval()
    x = torch.randn(2, 4, 6, 8)
    with torch.no_grad():
        scores = torch.softmax(model.q(x) @ model.k(x).permute(0, 1, 3, 2), -1)
        assert torch.equal(model(x), scores @ x)
    source = generate(result, "class")
    assert "out = q @ kt" in source and "out = out @ x" in source, source
    path = tmp_path / "scores.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("scores", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["scores"] = module
    spec.loader.exec_module(module)
    generated = module.Scores().eval()
    generated.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(generated(x), model(x))


class Attention(nn.Module):
    def __init__(self, spelling: int):
        super().__init__()
        self.q = nn.Linear(8, 8)
        self.k = nn.Linear(8, 8)
        self.spelling = spelling

    def forward(self, x):
        q, k = self.q(x), self.k(x).permute(0, 2, 1)
        if self.spelling == 0:
            return q @ k
        if self.spelling == 1:
            return torch.matmul(q, k)
        return torch.bmm(q, k)


@pytest.mark.parametrize("spelling", [0, 1, 2])
def test_import_round_trip(spelling):
    reference = Attention(spelling).eval()
    imported = model_to_spec(reference, (6, 8))
    assert imported.data["layers"][-1] == {"Matmul": None, "name": "matmul" if spelling != 2
                                           else "bmm", "from": ["q", "permute"]}
    model = netspec.build(dumps(imported.data)).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 6, 8)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))

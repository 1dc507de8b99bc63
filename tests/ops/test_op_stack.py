"""Stack (torch.stack along a new dim), a function op of two or more inputs declared in
netspec/ops/merge.py: its rule and dtypes against torch, and every command on it."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from test_differential_merge import related_shapes
from torch import nn

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import dumps, model_to_spec
from netspec.ops import REGISTRY, Args, ShapeError

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32")
BATCHES = (2, 3)


def torch_verdict(shapes, dtypes, dim):
    """(sample shape, dtype) of torch.stack at batches 2 and 3, or None where it raises or
    where the batch does not stay first and whole."""
    seen = set()
    for n in BATCHES:
        tensors = [torch.ones(n, *s, dtype=getattr(torch, d))
                   for s, d in zip(shapes, dtypes, strict=True)]
        try:
            out = torch.stack(tensors, dim)
        except (RuntimeError, IndexError):
            return None
        if out.shape[:1] != (n,):
            return None
        seen.add((tuple(out.shape[1:]), str(out.dtype).removeprefix("torch.")))
    return seen.pop() if len(seen) == 1 else None


def netspec_verdict(shapes, dtypes, dim):
    lt = REGISTRY["Stack"]
    a = Args.filled(lt, {"dim": dim}, [f"input {i}" for i in range(len(shapes))])
    try:
        return (tuple(lt.rule(a, list(shapes))), lt.dtype(a, list(dtypes))), None
    except ShapeError as exc:
        return None, exc.message


@settings(max_examples=examples(150))
@given(shapes=related_shapes(min_rank=0, max_rank=3), data=st.data())
def test_stack_agrees_with_torch(shapes, data):
    """Drawn shapes (often equal), dims in and out of range (0 and -rank stack the batch),
    dtypes (promoted as torch does): netspec's verdict, shape and dtype are torch's."""
    if len(shapes) == 2 and data.draw(st.booleans()):
        shapes = [shapes[0]] * data.draw(st.integers(2, 4))  # mostly equal shapes
    rank = len(shapes[0]) + 2
    dim = data.draw(st.integers(-rank - 1, rank))
    first = data.draw(st.sampled_from(DTYPES))
    dtypes = [first if data.draw(st.booleans()) else data.draw(st.sampled_from(DTYPES))
              for _ in shapes]
    ours, why = netspec_verdict(shapes, dtypes, dim)
    theirs = torch_verdict(shapes, dtypes, dim)
    assert ours == theirs, (shapes, dtypes, dim, ours, theirs, why)


SPEC = """\
netspec: 1
name: Pair
input: [4, 8]
layers:
  - Linear: {out_features: 6}
    name: a
  - Linear: {out_features: 6}
    name: b
    from: input
  - Stack: {dim: -1}
    from: [a, b]
    name: pair
  - Flatten: {start_dim: 2}
"""


def test_check_summary_render():
    result = netspec.check(SPEC)
    assert result.ok and result.output_shape == (4, 12)
    assert result.layers[2].output_shape == (4, 6, 2)
    rows = {r.name: r for r in summarize(result).rows}
    assert rows["pair"].params == 0 and rows["pair"].macs == 0
    assert "Stack" in to_dot(result) and "dim -1" in to_dot(result)


@pytest.mark.parametrize(("change", "message", "col"), [
    ("{dim: 0}", "Stack along dim 0 would put the new dim before the batch", 18),
    ("{dim: 4}", "dim 4 is out of range for stacking into a 4-d output (batch included); "
                 "expected a value in [-4, 3]", 18),
])
def test_refusals_point_at_dim(change, message, col):
    errors = netspec.check(SPEC.replace("{dim: -1}", change)).errors
    assert len(errors) == 1 and message in errors[0].message, errors
    assert (errors[0].line, errors[0].col) == (10, col)


def test_unequal_shapes_are_refused_naming_both():
    spec = SPEC.replace("out_features: 6}\n    name: b", "out_features: 5}\n    name: b")
    assert "cannot stack 4×6 from 'a' and 4×5 from 'b': stacked inputs must have equal " \
           "shapes" in netspec.check(spec).errors[0].message


def test_build_and_codegen(tmp_path):
    result = netspec.check(SPEC)
    model = netspec.build(result).eval()
    x = torch.randn(2, 4, 8)
    with torch.no_grad():
        expected = torch.flatten(torch.stack([model.a(x), model.b(x)], -1), 2)
        assert torch.equal(model(x), expected)
    source = generate(result, "class")
    assert "out = torch.stack([a, b], -1)" in source, source
    path = tmp_path / "pair.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("pair", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["pair"] = module
    spec.loader.exec_module(module)
    generated = module.Pair().eval()
    generated.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(generated(x), model(x))


class Stacked(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 6)
        self.b = nn.Linear(8, 6)
        self.c = nn.Linear(8, 6)

    def forward(self, x):
        return torch.stack([self.a(x), self.b(x), self.c(x)], dim=2)


def test_import_round_trip():
    reference = Stacked().eval()
    imported = model_to_spec(reference, (4, 8))
    assert imported.data["layers"][-1] == {"Stack": {"dim": 2}, "name": "stack",
                                           "from": ["a", "b", "c"]}
    model = netspec.build(dumps(imported.data)).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 4, 8)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))

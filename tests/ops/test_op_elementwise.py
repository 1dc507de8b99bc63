"""The elementwise ops Add, Mul, Sub, Div and Pow with a number in place of their second
tensor (x * 0.125, x / 2, x ** 2) and torch's type promotion, declared in
netspec/ops/merge.py: rules and dtypes against torch, and every command on them."""

from __future__ import annotations

import importlib.util
import itertools
import math
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
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.ops import REGISTRY, Args, ShapeError, torch_side
from netspec.ops.declare import promote_types, result_type

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32")
BATCHES = (2, 3)
# what torch does, written as a reader would: the operators and torch.div / torch.pow
TORCH = {
    "Add": lambda a, b, **kw: a + b,
    "Mul": lambda a, b, **kw: a * b,
    "Sub": lambda a, b, **kw: a - b,
    "Div": lambda a, b, rounding_mode=None: torch.div(a, b, rounding_mode=rounding_mode),
    "Pow": lambda a, b, **kw: torch.pow(a, b),
}
SCALAR_ARG = {"Add": "other", "Mul": "other", "Sub": "other", "Div": "other",
              "Pow": "exponent"}
# numbers at the edges torch draws its lines at: int32/int64 wrapping and overflow, the
# largest float16 and bfloat16, zero, negatives, non-finite values
EDGES = (0, 1, 2, -1, -3, 2**31 - 1, 2**31, -(2**31), 2**32, -(2**32), 3 * 2**32, 2**40,
         2**63 - 1, 2**63, -(2**63), 2**64 - 1, 2**64 - 2**32, 65504, 65505, -65505, 0.0, -0.0,
         0.5, -0.5, 2.0, -1.0, 65504.0, 65504.5, 65520.0, 3.3895313892515355e38, 3.4e38,
         1e300, math.inf, -math.inf, math.nan)
NUMBERS = (st.sampled_from(EDGES) | st.integers(-(2**63), 2**64 - 1)
           | st.floats(allow_nan=True, allow_infinity=True))


def torch_verdict(type_name, shapes, dtypes, scalar, rounding_mode):
    """(sample shape, dtype) of torch's result at batches 2 and 3, or None where it raises
    or where the sample shape depends on the batch (a sample dim read as the batch)."""
    kw = {"rounding_mode": rounding_mode} if type_name == "Div" else {}
    seen = set()
    for n in BATCHES:
        tensors = [torch.ones(n, *s, dtype=getattr(torch, d)) for s, d in
                   zip(shapes, dtypes, strict=True)]
        operands = [*tensors, scalar] if scalar is not None else tensors
        try:
            out = TORCH[type_name](*operands, **kw)
        except (RuntimeError, ValueError, TypeError, OverflowError, ZeroDivisionError):
            return None
        if out.shape[:1] != (n,):
            return None
        seen.add((tuple(out.shape[1:]), str(out.dtype).removeprefix("torch.")))
    return seen.pop() if len(seen) == 1 else None


def netspec_verdict(type_name, shapes, dtypes, given):
    """What netspec's declaration says: the arity, the shape rule, the dtype rule."""
    lt = REGISTRY[type_name]
    least, most = lt.input_range(given)
    if not least <= len(shapes) <= (most or len(shapes)):
        return None, "arity"
    a = Args.filled(lt, given, [f"input {i}" for i in range(len(shapes))])
    try:
        return (tuple(lt.rule(a, list(shapes))), lt.dtype(a, list(dtypes))), None
    except ShapeError as exc:
        return None, exc.message


def _given(type_name, scalar, rounding):
    given_args = {} if scalar is None else {SCALAR_ARG[type_name]: scalar}
    if rounding is not None:
        given_args["rounding_mode"] = rounding
    return given_args


def _agree(type_name, shapes, dtypes, scalar=None, rounding=None):
    ours, why = netspec_verdict(type_name, shapes, dtypes, _given(type_name, scalar, rounding))
    theirs = torch_verdict(type_name, shapes, dtypes, scalar, rounding)
    assert ours == theirs, (type_name, shapes, dtypes, scalar, rounding, ours, theirs, why)


ROUNDING = st.sampled_from([None, "trunc", "floor"])


@st.composite
def two_dtypes(draw):
    """Often the same dtype (ints as often as floats), else any two."""
    first = draw(st.sampled_from(DTYPES))
    return [first, first if draw(st.booleans()) else draw(st.sampled_from(DTYPES))]


@settings(max_examples=examples(150))
@given(type_name=st.sampled_from(sorted(TORCH)), shapes=related_shapes(min_rank=0, max_rank=3),
       dtypes=two_dtypes(), rounding=ROUNDING)
def test_two_tensors_agree_with_torch(type_name, shapes, dtypes, rounding):
    """Drawn shapes and dtypes: netspec refuses exactly when torch raises or reads a sample
    dim as the batch (different ranks), else gives torch's shape and promoted dtype."""
    pair = shapes[:2] if len(shapes) > 1 else shapes * 2
    _agree(type_name, pair, dtypes, rounding=rounding if type_name == "Div" else None)


@settings(max_examples=examples(150))
@given(type_name=st.sampled_from(sorted(TORCH)), shapes=related_shapes(min_rank=0, max_rank=3),
       dtype=st.sampled_from(DTYPES), number=NUMBERS, rounding=ROUNDING)
def test_a_tensor_and_a_number_agree_with_torch(type_name, shapes, dtype, number, rounding):
    """One tensor and a drawn number (edges of int32/int64/float16/bfloat16, zero, nan):
    netspec's verdict, shape and dtype are torch's."""
    _agree(type_name, shapes[:1], [dtype], number, rounding if type_name == "Div" else None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("type_name", sorted(TORCH))
def test_every_edge_number_agrees_with_torch(type_name, dtype):
    """Every edge number with every dtype (and rounding mode): where torch's lines are."""
    for number, rounding in itertools.product(EDGES, (None, "trunc", "floor")):
        if rounding is None or type_name == "Div":
            _agree(type_name, [(3,)], [dtype], number, rounding)


def test_a_number_and_two_tensors_are_one_operand_too_many():
    for type_name in TORCH:
        given_args = _given(type_name, 2, None)
        assert netspec_verdict(type_name, [(3,), (3,)], ["float32"] * 2, given_args) == \
            (None, "arity")


@pytest.mark.parametrize("type_name", sorted(TORCH))
def test_build_function_is_what_torch_does(type_name):
    """The function build calls (and codegen's infix) equals the torch expression."""
    x, y = torch.rand(2, 3, 4) + 0.5, torch.rand(2, 3, 4) + 0.5
    fn = torch_side.function(REGISTRY[type_name])
    assert torch.equal(fn(x, y), TORCH[type_name](x, y))
    assert torch.equal(fn(x, 3), TORCH[type_name](x, 3))


def test_promote_types_is_torch_promote_types():
    for a, b in itertools.product(DTYPES, repeat=2):
        theirs = torch.promote_types(getattr(torch, a), getattr(torch, b))
        assert promote_types(a, b) == str(theirs).removeprefix("torch."), (a, b)
    for dtype, number in itertools.product(DTYPES, (2, 2.5, -1, math.inf)):
        t = torch.ones(2, dtype=getattr(torch, dtype))
        assert result_type([dtype], number) == str(torch.result_type(t, number))[6:]


SPEC = """\
netspec: 1
name: ScaleNet
input: [3, 8, 8]
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
    name: a
  - Mul: 0.125
    name: scaled
  - Div: {other: 2, rounding_mode: floor}
    name: floored
  - Pow: 2
    name: squared
  - Sub: {other: 1}
  - Add: 3
  - Div: 4
    name: quarter
  - Conv2d: {out_channels: 4, kernel_size: 1}
    name: b
    from: input
  - Div:
    from: [quarter, b]
    name: ratio
  - Pow:
    from: [ratio, b]
    name: power
"""


def exact(actual, expected):
    """Equal element for element, nan where the other has nan (a negative base to a
    fractional power)."""
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)


def _load(source: str, tmp_path, name: str):
    path = tmp_path / f"{name.lower()}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name.lower(), path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name.lower()] = module
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_build_codegen_summary_render(tmp_path):
    result = netspec.check(SPEC)
    assert result.ok, result.errors
    model = netspec.build(result).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        a, b = model.a(x), model.b(x)
        quarter = (torch.div(a * 0.125, 2, rounding_mode="floor") ** 2 - 1 + 3) / 4
        exact(model(x), torch.pow(quarter / b, b))
    source = generate(result, "class")
    for line in ("out = out * 0.125", 'torch.div(out, 2, rounding_mode="floor")',
                 "out = out ** 2", "out = out - 1", "out = out + 3", "quarter = out / 4",
                 "out = quarter / b", "out = out ** b"):
        assert line in source, (line, source)
    generated = _load(source, tmp_path, "ScaleNet")().eval()
    generated.load_state_dict(model.state_dict())
    with torch.no_grad():
        exact(generated(x), model(x))
    rows = {r.name: r for r in summarize(result).rows}
    assert all(rows[n].params == 0 and rows[n].macs == 0 for n in ("scaled", "power"))
    dot = to_dot(result)
    assert 'label="× 0.125"' in dot and 'label="^ 2"' in dot and 'label="÷"' in dot
    assert "rounding_mode floor" in dot  # a keyword is shown in a box, not a circle


INT_SPEC = """\
netspec: 1
input: {shape: [6], dtype: int64}
layers:
  - Mul: 3
    name: tripled
  - Div: 2
    name: halved
  - Mul: 2
"""


def test_dtypes_flow_as_torch_promotes():
    result = netspec.check(INT_SPEC)
    assert [r.output_dtype for r in result.layers] == ["int64", "float32", "float32"]
    floored = netspec.check(INT_SPEC.replace("Div: 2", "Div: {other: 2, rounding_mode: trunc}"))
    assert [r.output_dtype for r in floored.layers] == ["int64", "int64", "int64"]
    model = netspec.build(floored)
    assert model(torch.arange(12).reshape(2, 6)).dtype == torch.int64
    half = netspec.check(INT_SPEC.replace("Mul: 3", "Mul: 0.5"))
    assert half.layers[0].output_dtype == "float32"


@pytest.mark.parametrize(("entry", "message", "col"), [
    ("Pow: -1", "exponent -1: torch does not raise int64 to a negative integer power", 10),
    ("Pow: 9223372036854775808", "exponent 9223372036854775808 does not fit int64", 10),
    ("Div: {other: 0, rounding_mode: floor}", "rounding_mode 'floor' divides int64 by the "
     "integer 0: torch raises ZeroDivisionError", 18),
])
def test_refusals_point_at_the_number(entry, message, col):
    result = netspec.check(INT_SPEC.replace("Mul: 3", entry))
    errors = [d for d in result.errors if "tripled" in d.message]
    assert len(errors) == 1 and message in errors[0].message, result.errors
    assert (errors[0].line, errors[0].col) == (4, col)


def test_a_number_and_two_tensors_are_refused():
    spec = SPEC.replace("  - Div:\n    from: [quarter, b]", "  - Div: {other: 2}\n    from: "
                                                            "[quarter, b]")
    assert [d.message for d in netspec.check(spec).errors] == [
        "layer 8 'ratio' (Div): Div with other: 2 (a number) takes one input, got 2"]
    lone = netspec.check(SPEC.replace("  - Pow: 2\n", "  - Pow:\n"))
    assert lone.errors[0].message.endswith(
        "Pow takes two inputs (the base, and the exponent): write from: [a, b], or "
        "exponent: a number")


class Scaled(nn.Module):
    def __init__(self, spelling: int):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.spelling = spelling

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        if self.spelling == 0:
            return (a * 0.5 + 1) ** 2 / b
        if self.spelling == 1:
            return torch.div(2 * a, 3, rounding_mode="trunc").pow(2) - b
        return (a // 2).mul(b).sub(1)


@pytest.mark.parametrize(("spelling", "entries"), [
    (0, [{"Mul": {"other": 0.5}}, {"Add": {"other": 1}}, {"Pow": {"exponent": 2}},
         {"Div": None}]),
    (1, [{"Mul": {"other": 2}}, {"Div": {"other": 3, "rounding_mode": "trunc"}},
         {"Pow": {"exponent": 2}}, {"Sub": None}]),
    (2, [{"Div": {"other": 2, "rounding_mode": "floor"}}, {"Mul": None},
         {"Sub": {"other": 1}}]),
])
def test_import_round_trip(spelling, entries):
    reference = Scaled(spelling).eval()
    imported = model_to_spec(reference, (4,))
    ops = [{k: v for k, v in e.items() if k[:1].isupper()} for e in imported.data["layers"]]
    assert ops[2:] == entries
    model = netspec.build(dumps(imported.data)).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


class Reversed(nn.Module):
    def forward(self, x):
        return 1 - x


def test_a_number_first_is_refused_by_name():
    with pytest.raises(ImportProblem, match=r"with the constant 1 first; Sub takes a number "
                                            r"only in place of its second operand \(other:\)"):
        model_to_spec(nn.Sequential(nn.Linear(4, 4), Reversed()), (4,))


def test_onnx_export_verified_in_onnxruntime(tmp_path, capsys):
    from netspec.cli import main

    spec = tmp_path / "scaled.yaml"
    spec.write_text("netspec: 1\ninput: [3, 8, 8]\nlayers:\n"
                    "  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n"
                    "  - Mul: 0.125\n  - Pow: 2\n  - Sub: {other: 1}\n  - Add: 3\n  - Div: 4\n")
    assert main(["export", str(spec), "-o", str(tmp_path / "scaled.onnx")]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out

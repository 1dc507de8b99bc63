"""RNNCell, GRUCell and LSTMCell, module ops taking an input and an optional state
(netspec/ops/recurrent.py; LSTMCell's h and c travel as torch's hx = (h, c)): their rules
against torch through the whole check, parameters, MACs, and every command on them."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import examples
from generated import load_generated
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.emit.codegen import StyleError, generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.ops import REGISTRY, Args

KINDS = ["RNNCell", "GRUCell", "LSTMCell"]
BATCHES = (2, 3)

SPEC = """\
netspec: 1
name: Cells
input: [6]
layers:
  - Linear: {out_features: 5}
    name: h0
  - Linear: {out_features: 5}
    name: c0
    from: input
  - LSTMCell: {hidden_size: 5}
    name: cell
    from: [input, h0, c0]
  - GRUCell: {hidden_size: 5}
    name: gru
    from: [input, cell]
  - RNNCell: {hidden_size: 3, nonlinearity: relu}
    name: rnn
  - Linear: {out_features: 2}
    name: head
"""


def _shaped(name: str, shape: tuple[int, ...]) -> list[dict]:
    """Entries that turn the 1×16 network input into a ``shape`` sample named ``name``:
    an adaptive pool to the element count, then Flatten (and Unflatten for rank 2)."""
    size = 1
    for d in shape:
        size *= d
    entries = [{"AdaptiveAvgPool1d": size, "from": "input"}, {"Flatten": None}]
    if len(shape) > 1:
        entries.append({"Unflatten": {"dim": 1, "unflattened_size": list(shape)}})
    entries[-1]["name"] = name
    return entries


def netspec_errors(kind, kwargs, shapes, dtype, names=("x", "h", "c")):
    """The errors of checking a spec whose op (named cell) takes tensors of ``shapes`` (for
    a cell the input, then the given states), each made from the network input and named
    as in ``names``; they must be the op's.  With the output shape and parameters where the
    spec checks."""
    layers = []
    for name, shape in zip(names, shapes, strict=False):
        layers += _shaped(name, shape)
    sources = list(names[:len(shapes)])
    layers.append({kind: kwargs, "name": "cell", "from": sources})
    data = {"netspec": 1, "input": {"shape": [1, 16], "dtype": dtype}, "layers": layers}
    result = netspec.check(yaml.safe_dump(data, sort_keys=False))
    errors = [d.message for d in result.errors]
    assert all("'cell'" in m for m in errors), errors  # nothing before the cell failed
    return errors, (result.output_shape, result.layers[-1].params) if result.ok else None


def torch_verdict(kind, kwargs, shapes, dtype):
    """The cell run on zeros of ``shapes`` at two batch sizes: (output shape, params), or
    None where torch raises or the result is not per sample."""
    try:
        cell = getattr(nn, kind)(**kwargs)
    except (ValueError, TypeError, RuntimeError):
        return None
    outputs = set()
    for n in BATCHES:
        x, *state = (torch.zeros(n, *s, dtype=getattr(torch, dtype)) for s in shapes)
        hx = (tuple(state) if kind == "LSTMCell" else state[0]) if state else None
        try:
            y = cell(x, hx)
        except (ValueError, RuntimeError, IndexError):
            return None
        y = y[0] if kind == "LSTMCell" else y
        if y.shape[0] != n:
            return None
        outputs.add(tuple(y.shape[1:]))
    return (outputs.pop(), sum(p.numel() for p in cell.parameters())) \
        if len(outputs) == 1 else None


@st.composite
def cases(draw):
    """Sizes mostly consistent (state features = hidden_size, input_size left to be
    inferred), sometimes not; ranks 1 (valid) or 2; a state given or not; float32 mostly."""
    kind = draw(st.sampled_from(KINDS))
    hidden, features = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kwargs = {"hidden_size": hidden, "bias": draw(st.booleans())}
    if draw(st.booleans()):
        kwargs["input_size"] = draw(st.sampled_from([features, features, features + 1]))
    if kind == "RNNCell" and draw(st.booleans()):
        kwargs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))

    def sample(size):
        if draw(st.integers(0, 5)) == 0:  # a 2-d sample: torch reads a 3-d tensor, refuses
            return (draw(st.integers(1, 3)), size)
        return (size,)

    shapes = [sample(features)]
    states = draw(st.sampled_from([0, 2, 2] if kind == "LSTMCell" else [0, 1]))
    for _ in range(states):
        shapes.append(sample(draw(st.sampled_from([hidden, hidden, hidden + 1]))))
    dtype = draw(st.sampled_from(["float32"] * 4 + ["float64", "bfloat16"]))
    return kind, kwargs, shapes, dtype


@settings(max_examples=examples(150))
@given(case=cases())
def test_cells_agree_with_torch(case):
    """netspec refuses exactly when torch raises (wrong ranks, input_size or state sizes
    that disagree, inputs of another dtype than the float32 parameters), and agrees on the
    output shape and parameter count when it accepts."""
    kind, kwargs, shapes, dtype = case
    errors, ours = netspec_errors(kind, kwargs, shapes, dtype)
    theirs = torch_verdict(kind, {"input_size": shapes[0][-1], **kwargs}, shapes, dtype)
    assert ours == theirs, (case, errors, theirs)


@pytest.mark.parametrize("case", [
    ("LSTMCell", {"hidden_size": 3}, [(4,), (3,), (2,)], "float32"),  # c alone is wrong
    ("LSTMCell", {"hidden_size": 3}, [(4,), (2,), (3,)], "float32"),
    ("LSTMCell", {"hidden_size": 3}, [(4,), (3,), (1, 3)], "float32"),
    ("LSTMCell", {"hidden_size": 3}, [(4,), (3,), (3,)], "float32"),
    ("GRUCell", {"hidden_size": 3}, [(4,), (2, 3)], "float32"),
    ("RNNCell", {"hidden_size": 3, "input_size": 5}, [(4,)], "float32"),
    ("RNNCell", {"hidden_size": 3}, [(4,), (3,)], "float64"),
])
def test_chosen_cases_agree_with_torch(case):
    kind, kwargs, shapes, dtype = case
    errors, ours = netspec_errors(kind, kwargs, shapes, dtype)
    theirs = torch_verdict(kind, {"input_size": shapes[0][-1], **kwargs}, shapes, dtype)
    assert ours == theirs, (case, errors, theirs)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_params_and_macs_equal_torchs(kind, with_state, bias):
    lt = REGISTRY[kind]
    a = Args.filled(lt, {"input_size": 7, "hidden_size": 5, "bias": bias})
    shapes = [(7,), *([(5,)] * (len(lt.inputs) - 1) if with_state else [])]
    cell = getattr(nn, kind)(7, 5, bias=bias)
    assert lt.params(a, shapes) == sum(p.numel() for p in cell.parameters())
    x, *state = (torch.zeros(1, *s) for s in shapes)
    hx = (tuple(state) if kind == "LSTMCell" else state[0]) if state else None
    with FlopCounterMode(display=False) as counter:
        cell(x, hx)
    assert counter.get_total_flops() == 2 * lt.macs(a, shapes, (5,))


def test_refusals_name_the_ports_and_numbers():
    def message(text):
        return [d.message for d in netspec.check(text).errors]

    assert message(SPEC.replace("from: [input, h0, c0]", "from: [input, h0]")) == [
        "layer 2 'cell' (LSTMCell): LSTMCell takes three inputs (the input, the hidden state "
        "h, and the cell state c), got 2: the hidden state h and the cell state c go together "
        "(torch takes them as one tuple, hx)"]
    assert message(SPEC.replace("{hidden_size: 5}\n    name: gru", "{hidden_size: 4}\n"
                                "    name: gru")) == [
        "layer 3 'gru' (GRUCell): the state h (5 from 'cell') has 5 features, but hidden_size "
        "is 4"]
    assert message(SPEC.replace("{hidden_size: 5}\n    name: cell",
                                "{input_size: 7, hidden_size: 5}\n    name: cell")) == [
        "layer 2 'cell' (LSTMCell): input_size 7 does not match the 6 features coming in (the "
        "network input, 6)"]
    unflattened = SPEC.replace("input: [6]", "input: [2, 3]").replace(
        "  - Linear: {out_features: 5}\n    name: h0\n",
        "  - Flatten\n  - Linear: {out_features: 5}\n    name: h0\n")
    assert "expects a 1-d (features) input (batch excluded), got 2×3" in \
        message(unflattened)[0]
    doubled = SPEC.replace("input: [6]", "input: {shape: [6], dtype: float64}")
    assert any("has float32 parameters but gets float64" in m for m in message(doubled))


def test_build_and_codegen_are_torchs_cells(tmp_path):
    result = netspec.check(SPEC)
    assert result.ok and result.output_shape == (2,)
    assert [r.params for r in result.layers[2:5]] == [260, 195, 30]
    model = netspec.build(result).eval()
    assert [type(model.get_submodule(n)) for n in ("cell", "gru", "rnn")] == \
        [nn.LSTMCell, nn.GRUCell, nn.RNNCell]
    x = torch.randn(4, 6)
    with torch.no_grad():
        h = model.cell(x, (model.h0(x), model.c0(x)))[0]
        expected = model.head(model.rnn(model.gru(x, h)))
        assert torch.equal(model(x), expected)
    source = generate(result, "class")
    assert "cell = self.cell(x, (h0, c0))[0]" in source
    assert "x = self.gru(x, cell)" in source and "x = self.rnn(x)" in source
    generated = load_generated(source, "cells_net", tmp_path).Cells().eval()
    generated.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(generated(x), expected)


def test_sequential_styles_say_why_not():
    chain = ("netspec: 1\nname: Chain\ninput: [6]\nlayers:\n  - RNNCell: {hidden_size: 4}\n"
             "  - Linear: {out_features: 2}\n")
    with pytest.raises(StyleError, match=r"style 'sequential' cannot express Chain: its "
                       r"RNNCell '0' takes several inputs \(the input, the hidden state h\), "
                       "called in forward"):
        generate(netspec.check(chain), "sequential")


def test_summary_and_render():
    result = netspec.check(SPEC)
    rows = {r.name: r for r in summarize(result).rows}
    assert [rows[n].macs for n in ("cell", "gru", "rnn")] == [4 * 5 * 11, 3 * 5 * 11, 3 * 8]
    model = netspec.build(result)
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 6))
    assert counter.get_total_flops() == 2 * summarize(result).macs
    dot = to_dot(result)
    assert "LSTMCell" in dot and "in 6, hidden 5" in dot and "RNNCell" in dot


class Steps(nn.Module):
    """One step of each cell, with its state made from the input, given as torch's
    spellings allow: a tuple (h, c), a tensor, None, or nothing."""

    def __init__(self, use_c: bool = False):
        super().__init__()
        self.use_c = use_c
        self.h0, self.c0 = nn.Linear(6, 5), nn.Linear(6, 5)
        self.lstm = nn.LSTMCell(6, 5)
        self.gru = nn.GRUCell(6, 5, bias=False)
        self.rnn = nn.RNNCell(5, 3, nonlinearity="relu")
        self.rnn2 = nn.RNNCell(3, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        h, c = self.lstm(x, (self.h0(x), self.c0(x)))
        h = self.gru(x, c if self.use_c else h)
        return self.head(self.rnn2(self.rnn(h), None))


def test_import_round_trip():
    reference = Steps().eval()
    imported = model_to_spec(reference, (6,))
    layers = imported.data["layers"]
    assert layers[2] == {"LSTMCell": {"hidden_size": 5}, "name": "lstm",
                         "from": ["input", "h0", "c0"]}
    assert layers[3] == {"GRUCell": {"hidden_size": 5, "bias": False}, "name": "gru",
                         "from": ["input", "lstm"]}
    assert layers[4] == {"RNNCell": {"hidden_size": 3, "nonlinearity": "relu"}, "name": "rnn"}
    model = netspec.build(dumps(imported.data)).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 6)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_import_refuses_the_cell_state_c():
    with pytest.raises(ImportProblem, match=r"module 'lstm' \(LSTMCell\) returns a tuple, "
                       r"and the forward of the model \(Steps\) uses its c .*; a spec carries "
                       "on only its h"):
        model_to_spec(Steps(use_c=True), (6,))


def test_onnx_export_verified_in_onnxruntime(tmp_path, capsys):
    from netspec.cli import main

    spec = tmp_path / "cells.yaml"
    spec.write_text(SPEC)
    assert main(["export", str(spec), "-o", str(tmp_path / "cells.onnx")]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out


class Spelled(nn.Module):
    """The state passed by keyword, and LSTMCell's hx as a list."""

    def __init__(self, wrong: bool = False):
        super().__init__()
        self.wrong = wrong
        self.h0, self.c0 = nn.Linear(6, 5), nn.Linear(6, 5)
        self.gru = nn.GRUCell(6, 5)
        self.lstm = nn.LSTMCell(5, 5)

    def forward(self, x):
        h0 = self.h0(x)
        h = self.gru(x, hx=h0)
        if self.wrong:
            return self.lstm(h, self.c0(x))[0]
        return self.lstm(h, hx=[h0, self.c0(x)])[0]


def test_import_reads_keyword_and_list_states():
    reference = Spelled().eval()
    layers = model_to_spec(reference, (6,)).data["layers"]
    assert [e.get("from") for e in layers if "GRUCell" in e or "LSTMCell" in e] == \
        [["input", "h0"], ["gru", "h0", "c0"]]
    with pytest.raises(ImportProblem, match="a spec passes hx as a tuple of 2 tensors "
                                            r"\(h, c\)"):
        model_to_spec(Spelled(wrong=True), (6,))

"""RNNCellLoop, GRUCellLoop and LSTMCellLoop: a cell stepped over the time dimension with
one set of weights (netspec/ops/recurrent.py).  The truth is torch's cell in the tutorials'
loop, for t in range(L): h = cell(x[:, t], h): the rule through the whole check (hypothesis,
accepted and refused alike), params and MACs, build, generated code, render, summary, ONNX
export and the import round trip."""

from __future__ import annotations

import os

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
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import dumps, model_to_spec

KINDS = ["RNNCell", "GRUCell", "LSTMCell"]


def stepped(cell: nn.Module, x: torch.Tensor, hx=None) -> tuple[torch.Tensor, object]:
    """The tutorials' loop over torch's own cell: each step's h stacked along time."""
    steps = []
    for t in range(x.shape[1]):
        hx = cell(x[:, t], hx)
        steps.append(hx[0] if isinstance(hx, tuple) else hx)
    return torch.stack(steps, dim=1), hx


def _spec(kind: str, kwargs: dict, sample: list[int], states: list[int]) -> dict:
    """The loop (named loop) on the network input, its states (each a Linear of that width
    on the input's first step) given where listed."""
    layers, sources = [], ["input"]
    for i, width in enumerate(states):
        layers += [{"Select": {"dim": 1, "index": 0}, "from": "input"},
                   {"Linear": {"out_features": width}, "name": f"s{i}"}]
        sources.append(f"s{i}")
    layers.append({f"{kind}Loop": kwargs, "name": "loop", "from": sources})
    return {"netspec": 1, "input": sample, "layers": layers}


def torch_verdict(kind, kwargs, sample, states):
    """The output shape of torch's cell stepped over an input of ``sample`` per sample
    (batch 3) from states of those widths; None where torch raises."""
    cell = getattr(nn, kind)(**kwargs)
    x = torch.zeros(3, *sample)
    hx = [torch.zeros(3, w) for w in states]
    try:
        output, _ = stepped(cell, x, (tuple(hx) if kind == "LSTMCell" else hx[0])
                            if hx else None)
    except (RuntimeError, ValueError, IndexError):
        return None
    return tuple(output.shape[1:])


@st.composite
def cases(draw):
    kind = draw(st.sampled_from(KINDS))
    hidden, features = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kwargs = {"input_size": draw(st.sampled_from([features, features, features + 1])),
              "hidden_size": hidden, "bias": draw(st.booleans())}
    sample = draw(st.sampled_from([[draw(st.integers(1, 4)), features]] * 4 + [[features],
                                   [2, 2, features]]))
    count = draw(st.sampled_from([0, 2 if kind == "LSTMCell" else 1])) if len(sample) == 2 \
        else 0
    states = [draw(st.sampled_from([hidden, hidden, hidden + 1])) for _ in range(count)]
    return kind, kwargs, sample, states


@settings(max_examples=examples(100), deadline=None)
@given(case=cases())
def test_loops_agree_with_torchs_cells(case):
    kind, kwargs, sample, states = case
    result = netspec.check(yaml.safe_dump(_spec(kind, kwargs, sample, states)))
    errors = [d.message for d in result.errors]
    assert all("'loop'" in m for m in errors), errors
    theirs = torch_verdict(kind, kwargs, sample, states) if len(sample) == 2 else None
    if len(sample) != 2:  # torch would step over a 1-d sample's features, mixing samples
        assert any("expects a L×features" in m for m in errors), errors
        return
    if theirs is None:
        assert errors, f"torch refuses {case}, netspec accepts"
        return
    assert not errors, f"torch accepts {case}: {errors}"
    assert result.output_shape == theirs


SPEC = """\
netspec: 1
name: Loops
input: [5, 6]
outputs: [head, lstm.h, lstm.c]
layers:
  - Select: {dim: 1, index: 0}
  - Linear: {out_features: 4}
    name: h0
  - GRUCellLoop: {hidden_size: 4}
    name: gru
    from: [input, h0]
  - LSTMCellLoop: {hidden_size: 3}
    name: lstm
  - RNNCellLoop: {hidden_size: 2, nonlinearity: relu}
    name: rnn
  - Select: {dim: 1, index: -1}
  - Linear: {out_features: 2}
    name: head
"""


def torch_cell(loop: nn.Module) -> nn.Module:
    """torch's own cell (the loop's base class) holding the loop's weights."""
    base = type(loop).__mro__[1]
    cell = base(loop.input_size, loop.hidden_size, loop.bias,
                **({"nonlinearity": loop.nonlinearity} if base is nn.RNNCell else {}))
    cell.load_state_dict(loop.state_dict(), strict=True)
    return cell


def _expected(model, x):
    h0 = model.h0(x[:, 0])
    gru, _ = stepped(torch_cell(model.gru), x, h0)
    lstm, (h, c) = stepped(torch_cell(model.lstm), gru)
    rnn, _ = stepped(torch_cell(model.rnn), lstm)
    return model.head(rnn[:, -1]), h, c


def test_build_and_generated_code_step_torchs_cells(tmp_path):
    result = netspec.check(SPEC)
    assert result.ok, [d.format() for d in result.errors]
    assert [r.output_shape for r in result.layers[2:5]] == [(5, 4), (5, 3), (5, 2)]
    model = netspec.build(result).eval()
    assert isinstance(model.gru, nn.GRUCell) and list(model.gru.state_dict()) == \
        list(nn.GRUCell(6, 4).state_dict())
    source = generate(result, "class")
    assert "class GRUCellLoop(nn.GRUCell):" in source
    assert "        for t in range(x.shape[1]):\n            hx = super().forward(x[:, t], hx)" \
        in source
    assert "self.gru = GRUCellLoop(6, 4)" in source and "self.gru(x, h0)[0]" in source
    generated = load_generated(source, "loops_net", tmp_path).Loops().eval()
    generated.load_state_dict(model.state_dict(), strict=True)
    for batch in (1, 3):
        x = torch.randn(batch, 5, 6)
        with torch.no_grad():
            expected = _expected(model, x)
            for got in (model(x), generated(x)):
                assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_params_and_macs_equal_torchs(kind, with_state):
    states = ([4, 4] if kind == "LSTMCell" else [4]) if with_state else []
    result = netspec.check(yaml.safe_dump(_spec(kind, {"hidden_size": 4}, [7, 6], states)))
    assert result.ok, [d.format() for d in result.errors]
    loop = summarize(result).rows[-1]
    cell = getattr(nn, kind)(6, 4)
    assert loop.params == sum(p.numel() for p in cell.parameters())
    x = torch.zeros(1, 7, 6)
    hx = [torch.zeros(1, 4) for _ in states]
    with FlopCounterMode(display=False) as counter:
        stepped(cell, x, (tuple(hx) if kind == "LSTMCell" else hx[0]) if hx else None)
    assert 2 * loop.macs == counter.get_total_flops()


def test_refusals_name_the_numbers():
    text = SPEC.replace("GRUCellLoop: {hidden_size: 4}", "GRUCellLoop: {hidden_size: 5}")
    errors = [d.format() for d in netspec.check(text).errors]
    assert any("the state h (4 from 'h0') has 4 features, but hidden_size is 5" in e
               for e in errors), errors
    text = SPEC.replace("from: [input, h0]", "from: [input, h0, h0]")
    errors = [d.message for d in netspec.check(text).errors]
    assert any("GRUCellLoop takes two inputs (the sequence, and the initial hidden state h), "
               "got 3" in e for e in errors), errors


def test_summary_render_and_import_round_trip():
    result = netspec.check(SPEC)
    rows = {r.name: r for r in summarize(result).rows}
    assert rows["gru"].macs == 5 * 3 * 4 * (6 + 4)
    dot = to_dot(result)
    assert 'gru -> gru [label=" h, each step " dir=back style=dashed]' in dot
    chain = SPEC.replace("outputs: [head, lstm.h, lstm.c]\n", "")
    model = netspec.build(chain).eval()
    imported = model_to_spec(model, (5, 6))
    layers = imported.data["layers"]
    assert {"GRUCellLoop": {"hidden_size": 4}, "name": "gru", "from": ["input", "h0"]} \
        in layers
    again = netspec.build(dumps(imported.data)).eval()
    again.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 5, 6)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


@pytest.mark.skipif(not os.environ.get("NETSPEC_IMPORT_COVERAGE"), reason="the ONNX export of "
                    "a loop is tested on specs/zoo/char_rnn.yaml in make test (tests/emit/"
                    "test_export.py); this one, all three kinds, in make fuzz")
def test_onnx_export_verified_in_onnxruntime(tmp_path, capsys):
    from netspec.cli import main

    spec = tmp_path / "loops.yaml"
    spec.write_text(SPEC)
    assert main(["export", str(spec), "-o", str(tmp_path / "loops.onnx")]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out

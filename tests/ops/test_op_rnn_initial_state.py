"""RNN, GRU and LSTM given their initial state (torch's gru(x, h_0), lstm(x, (h_0, c_0))),
written from: [x, encoder.h_n]: the state's shape against torch through the whole check
(hypothesis, accepted and refused alike), the messages, the built model and the generated
code against torch."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import examples
from generated import load_generated
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netspec
from netspec.emit.codegen import generate
from netspec.importer.fx import ImportProblem, dumps, model_to_spec

FEATURES = 6


def _spec(kind: str, args: dict, states: list[tuple[int, int]], length: int) -> dict:
    """A network whose RNN (named rnn) takes the input and the states, each the h_n of a GRU
    of that many layers and that hidden size run over the input (rows × N × width)."""
    layers, sources = [], ["input"]
    for i, (rows, width) in enumerate(states):
        layers.append({"GRU": {"hidden_size": width, "num_layers": rows, "batch_first": True},
                       "name": f"enc{i}", "from": "input"})
        sources.append(f"enc{i}.h_n")
    layers.append({kind: args, "name": "rnn", "from": sources})
    return {"netspec": 1, "input": [length, FEATURES], "outputs": ["rnn", "rnn.h_n"],
            "layers": layers}


def torch_verdict(kind, args, states, length, batch):
    """What torch does with the input and states of these shapes: the output and h_n shapes,
    or None where it raises."""
    module = getattr(torch.nn, kind)(FEATURES, **args)
    x = torch.zeros(batch, length, FEATURES)
    hx = [torch.zeros(rows, batch, width) for rows, width in states]
    try:
        output, state = module(x, tuple(hx) if kind == "LSTM" else hx[0])
    except (RuntimeError, ValueError):
        return None
    h_n = state[0] if kind == "LSTM" else state
    return tuple(output.shape), tuple(h_n.shape)


@st.composite
def cases(draw):
    kind = draw(st.sampled_from(["RNN", "GRU", "LSTM"]))
    layers, bidirectional = draw(st.integers(1, 3)), draw(st.booleans())
    hidden = draw(st.integers(2, 7))
    args = {"hidden_size": hidden, "num_layers": layers, "bidirectional": bidirectional,
            "batch_first": draw(st.sampled_from([True, True, True, False]))}
    proj = draw(st.integers(0, hidden - 1)) if kind == "LSTM" else 0
    if proj:
        args["proj_size"] = proj
    rows = layers * (2 if bidirectional else 1)
    widths = [proj or hidden, hidden] if kind == "LSTM" else [hidden]
    states = []
    for width in widths:  # mostly right, sometimes a row or a width off
        states.append((draw(st.sampled_from([rows, rows, rows, max(1, rows - 1), rows + 1])),
                       draw(st.sampled_from([width, width, width, width + 1]))))
    return kind, args, states, draw(st.integers(1, 5))


@settings(max_examples=examples(120), deadline=None)
@given(case=cases())
def test_initial_states_agree_with_torch(case):
    kind, args, states, length = case
    result = netspec.check(yaml.safe_dump(_spec(kind, args, states, length)))
    errors = [d.message for d in result.errors]
    assert all("'rnn'" in m for m in errors), errors  # nothing before the RNN failed
    batch = length + 2  # not the length: with batch_first false torch reads it as the batch
    theirs = torch_verdict(kind, args, states, length, batch)
    if theirs is None:
        assert errors, f"torch refuses {case}, netspec accepts"
        return
    if not args["batch_first"]:  # torch takes it only for a batch as long as the sequence
        assert any("batch_first" in m for m in errors), errors
        assert torch_verdict(kind, args, states, length, length + 1) is None
        return
    assert not errors, f"torch accepts {case}: {errors}"
    output, h_n = result.network.outputs
    assert (batch, *output.shape) == theirs[0]
    assert (h_n.shape[0], batch, h_n.shape[1]) == theirs[1]


@pytest.mark.parametrize(("kind", "args", "states"), [
    ("GRU", {"hidden_size": 4, "num_layers": 2, "batch_first": True}, [(2, 4)]),
    ("GRU", {"hidden_size": 4, "num_layers": 2, "batch_first": True}, [(1, 4)]),
    ("RNN", {"hidden_size": 4, "bidirectional": True, "batch_first": True}, [(2, 4)]),
    ("RNN", {"hidden_size": 4, "bidirectional": True, "batch_first": True}, [(1, 4)]),
    ("LSTM", {"hidden_size": 5, "proj_size": 3, "batch_first": True}, [(1, 3), (1, 5)]),
    ("LSTM", {"hidden_size": 5, "proj_size": 3, "batch_first": True}, [(1, 5), (1, 5)]),
    ("LSTM", {"hidden_size": 5, "proj_size": 3, "batch_first": True}, [(1, 3), (1, 3)]),
])
def test_chosen_cases_agree_with_torch(kind, args, states):
    test_initial_states_agree_with_torch.hypothesis.inner_test((kind, args, states, 3))


SPEC = """\
netspec: 1
name: Translator
inputs:
  source: {shape: [7], dtype: int64}
  target: {shape: [5], dtype: int64}
layers:
  - Embedding: {num_embeddings: 20, embedding_dim: 8}
    from: source
    name: src_embed
  - LSTM: {hidden_size: 16, num_layers: 2, batch_first: true}
    name: encoder
  - Embedding: {num_embeddings: 30, embedding_dim: 8}
    from: target
    name: tgt_embed
  - LSTM: {hidden_size: 16, num_layers: 2, batch_first: true}
    from: [tgt_embed, encoder.h_n, encoder.c_n]
    name: decoder
  - Linear: {out_features: 30}
    name: head
"""


@pytest.mark.parametrize(("old", "new", "message"), [
    ("num_layers: 2, batch_first: true}\n    from", "num_layers: 3, batch_first: true}\n    from",
     "layer 3 'decoder' (LSTM): the initial state h_0 (2×N×16 from 'encoder.h_n') should be "
     "3×N×16 (num_layers 3 × 1 direction, the batch, hidden_size 16)"),
    ("encoder.h_n, encoder.c_n", "encoder.h_n",
     "the initial hidden state h_0 and the initial cell state c_0 go together (torch takes "
     "them as one tuple, hx)"),
    ("encoder.h_n, encoder.c_n", "encoder, encoder.c_n",
     "the initial hidden state h_0 takes a recurrent state, layers × batch × hidden (its "
     "batch at dim 1, as another RNN's: from: encoder.h_n), but 'encoder' is a batch of "
     "samples (7×16 each)"),
    ("[tgt_embed, encoder.h_n, encoder.c_n]", "[encoder.h_n, tgt_embed]",
     "'encoder.h_n' is a recurrent state, 2×N×16 (layers × batch × hidden), not the sequence; "
     "the state goes after it: from: [x, encoder.h_n]"),
    ("num_layers: 2, batch_first: true}\n    from", "num_layers: 2}\n    from",
     "with batch_first false torch reads dimension 1, the sequence length, as the batch"),
    ("num_layers: 2, batch_first: true}\n    from",
     "num_layers: 2, batch_first: true, proj_size: 4}\n    from",
     "should be 2×N×4 (num_layers 2 × 1 direction, the batch, proj_size 4)"),
])
def test_mistakes_name_the_numbers(old, new, message):
    text = SPEC.replace(old, new)
    assert text != SPEC
    errors = [d.format() for d in netspec.check(text).errors]
    assert any(message in e for e in errors), errors
    assert all(e.startswith("<spec>:15:") for e in errors), errors  # at the decoder


def test_built_and_generated_models_are_torchs(tmp_path):
    result = netspec.check(SPEC)
    assert result.ok, [d.format() for d in result.errors]
    built = netspec.build(result).eval()
    source = generate(result)
    generated = load_generated(source, "translator_net", tmp_path).Translator().eval()
    generated.load_state_dict(built.state_dict(), strict=True)
    assert "self.decoder(out, (encoder[1][0], encoder[1][1]))[0]" in source
    for batch in (1, 4):
        src, tgt = torch.randint(0, 20, (batch, 7)), torch.randint(0, 30, (batch, 5))
        with torch.no_grad():
            _, state = built.encoder(built.src_embed(src))
            decoded, _ = built.decoder(built.tgt_embed(tgt), state)
            expected = built.head(decoded)
            assert torch.equal(built(src, tgt), expected)
            assert torch.equal(generated(src, tgt), expected)


class Handover(nn.Module):
    """Encoders handing their final states to decoders, as torch code writes it: a GRU's h,
    an LSTM's (h, c) unpacked and passed as a tuple; the last layer's h_n into a head."""

    def __init__(self, whole: bool = False):
        super().__init__()
        self.whole = whole
        self.enc = nn.GRU(6, 8, batch_first=True)
        self.dec = nn.GRU(6, 8, batch_first=True)
        self.lenc = nn.LSTM(6, 4, num_layers=2, batch_first=True)
        self.ldec = nn.LSTM(8, 4, num_layers=2, batch_first=True)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        _, h = self.enc(x)
        y, _ = self.dec(x, h)
        _, state = self.lenc(x)
        if self.whole:  # the (h, c) tuple passed on as it came
            _, (h_n, _) = self.ldec(y, state)
        else:
            h0, c0 = state
            _, (h_n, _) = self.ldec(y, (h0, c0))
        return self.fc(h_n[-1])


def test_import_round_trip():
    reference = Handover().eval()
    layers = model_to_spec(reference, (5, 6)).data["layers"]
    by_name = {e.get("name"): e for e in layers}
    assert by_name["dec"]["from"] == ["input", "enc.h_n"]
    assert by_name["ldec"]["from"] == ["dec", "lenc.h_n", "lenc.c_n"]
    assert {"Select": {"dim": 0, "index": -1}, "from": "ldec.h_n"}.items() <= \
        next(e for e in layers if "Select" in e).items()
    model = netspec.build(dumps({"netspec": 1, "input": [5, 6], "layers": layers})).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 5, 6)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_import_refuses_an_lstm_state_passed_whole():
    with pytest.raises(ImportProblem, match=r"module 'ldec' \(LSTM\) is given hx=getitem_\d+; "
                       r"a spec passes hx as a tuple of 2 tensors \(h_0, c_0\)"):
        model_to_spec(Handover(whole=True).eval(), (5, 6))

"""An RNN's, GRU's or LSTM's state taken by name (from: lstm.h_n, outputs: [lstm.c_n]):
its shape against torch (layers × batch × hidden, the batch at dim 1), h_n[-1] with
Select, the built model and the generated code against torch, and the mistakes."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import examples
from function_ops import load_generated
from hypothesis import given, settings
from hypothesis import strategies as st

import netspec

SPEC = """\
netspec: 1
name: TextClassifier
input: {shape: [12], dtype: int64}
outputs: [fc, lstm.h_n, lstm.c_n]
layers:
  - Embedding: {num_embeddings: 100, embedding_dim: 32}
    name: embed
  - LSTM: {hidden_size: 24, num_layers: 2, batch_first: true, bidirectional: true}
    name: lstm
  - Select: {dim: 0, index: -1}
    from: lstm.h_n
    name: last
  - Linear: {out_features: 5}
    name: fc
"""


@settings(max_examples=examples(40), deadline=None)
@given(kind=st.sampled_from(["RNN", "GRU", "LSTM"]), layers=st.integers(1, 3),
       bidirectional=st.booleans(), hidden=st.integers(2, 9), proj=st.integers(0, 8),
       length=st.integers(1, 5))
def test_state_shapes_agree_with_torch(kind, layers, bidirectional, hidden, proj, length):
    args = {"hidden_size": hidden, "num_layers": layers, "batch_first": True,
            "bidirectional": bidirectional}
    if kind == "LSTM" and proj < hidden:
        args["proj_size"] = proj
    states = ["h_n", "c_n"] if kind == "LSTM" else ["h_n"]
    spec = {"netspec": 1, "input": [length, 6], "outputs": [f"rnn.{s}" for s in states],
            "layers": [{kind: args, "name": "rnn"}]}
    result = netspec.check(yaml.safe_dump(spec))
    assert result.ok, [d.format() for d in result.errors]
    module = getattr(torch.nn, kind)(6, **args)
    _, state = module(torch.zeros(3, length, 6))
    theirs = list(state) if kind == "LSTM" else [state]
    for output, tensor in zip(result.network.outputs, theirs, strict=True):
        assert output.batch_dim == 1 and tensor.shape[1] == 3
        assert (*output.shape[:1], 3, *output.shape[1:]) == tuple(tensor.shape)


def test_check_shows_the_state_with_its_batch():
    result = netspec.check(SPEC)
    assert result.ok, [d.format() for d in result.errors]
    assert "outputs (tuple) fc 5, lstm.h_n 4×N×24, lstm.c_n 4×N×24" in result.table()
    assert result.layers[2].output_shape == (24,)  # h_n[-1]: the last layer's, batched


def test_build_and_generated_code_against_torch(tmp_path):
    result = netspec.check(SPEC)
    built = netspec.build(result).eval()
    generated = load_generated(result, tmp_path, "TextClassifier")().eval()
    generated.load_state_dict(built.state_dict(), strict=True)
    assert list(built.state_dict()) == list(generated.state_dict())
    for batch in (2, 5):
        x = torch.randint(0, 100, (batch, 12))
        with torch.no_grad():
            _, (h_n, c_n) = built.lstm(built.embed(x))
            expected = (built.fc(h_n[-1]), h_n, c_n)
            for model in (built, generated):
                got = model(x)
                assert len(got) == 3 and all(torch.equal(a, b)
                                             for a, b in zip(got, expected, strict=True))
    source = netspec.emit.codegen.generate(result)
    assert "        lstm = self.lstm(x)\n        out = lstm[1][0][-1]  # -> 24" in source
    assert "return (out, lstm[1][0], lstm[1][1])" in source


def test_an_lstm_whose_state_is_not_read_returns_its_output_only():
    text = SPEC.replace("outputs: [fc, lstm.h_n, lstm.c_n]\n", "").replace(
        "    from: lstm.h_n\n", "")
    result = netspec.check(text.replace("Select: {dim: 0, index: -1}", "Select: {dim: 1, "
                                                                      "index: -1}"))
    assert result.ok, [d.format() for d in result.errors]
    lstm = netspec.build(result).lstm
    assert type(lstm).__module__ == "netspec.ops.torch_side"  # the output-only subclass
    assert isinstance(lstm(torch.zeros(2, 12, 32)), torch.Tensor)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("    from: lstm.h_n\n    name: last\n", "    from: lstm.h_n\n    name: last\n"
     "  - ReLU:\n    from: lstm.c_n\n",
     "'lstm.c_n' is a recurrent state, 4×N×24 (layers × batch × hidden: its batch is dim 1);"
     " take one layer's first, as h_n[-1]: Select: {dim: 0, index: -1}"),
    ("Select: {dim: 0, index: -1}", "Select: {dim: 1, index: -1}",
     "'lstm.h_n' (4×N×24) has its batch at dim 1: select dim 0"),
    ("Select: {dim: 0, index: -1}", "Select: {dim: 0, index: 4}",
     "index 4 is out of range for dim 0 of 'lstm.h_n' (4×N×24), of size 4"),
    ("    from: lstm.h_n\n", "    from: lstm.h\n",
     "from: 'lstm' has no output 'h'; it gives 2: lstm.h_n, lstm.c_n"),
    ("outputs: [fc, lstm.h_n, lstm.c_n]", "outputs: [fc, embed.h_n]",
     "'embed' gives one tensor, not several: write embed"),
])
def test_mistakes(old, new, message):
    text = SPEC.replace(old, new)
    errors = [d.message for d in netspec.check(text).errors]
    assert any(message in e for e in errors), errors

"""TransformerDecoderLayer, a module op of two inputs, tgt and memory
(netspec/ops/recurrent.py): its rule against torch through the whole check, parameters,
MACs, and every command on it."""

from __future__ import annotations

import pytest
import torch
from conftest import examples
from generated import load_generated
from hypothesis import given, settings
from hypothesis import strategies as st
from test_op_cells import BATCHES, netspec_errors
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.ops import REGISTRY, Args

SPEC = """\
netspec: 1
name: Seq2Seq
input: [6, 16]
layers:
  - TransformerEncoderLayer: {nhead: 4, dim_feedforward: 32, batch_first: true}
    name: memory
  - Linear: {out_features: 16}
    name: tgt
    from: input
  - TransformerDecoderLayer: {nhead: 4, dim_feedforward: 32, batch_first: true}
    name: decoder
    from: [tgt, memory]
  - Linear: {out_features: 3}
    name: head
"""


def torch_verdict(kwargs, shapes, dtype):
    """The layer on zeros of ``shapes`` (tgt, memory) at two batch sizes, in eval: (output
    shape, parameters), or None where torch raises or the result is not per sample."""
    try:
        layer = nn.TransformerDecoderLayer(**kwargs).eval()
    except (AssertionError, ValueError, RuntimeError):
        return None
    outputs = set()
    for n in BATCHES:
        tgt, memory = (torch.zeros(n, *s, dtype=getattr(torch, dtype)) for s in shapes)
        try:
            with torch.no_grad():
                y = layer(tgt, memory)
        except (AssertionError, ValueError, RuntimeError, IndexError):
            return None
        if y.dim() == 0 or y.shape[0] != n:
            return None
        outputs.add(tuple(y.shape[1:]))
    return (outputs.pop(), sum(p.numel() for p in layer.parameters())) \
        if len(outputs) == 1 else None


@st.composite
def cases(draw):
    """Mostly valid sizes (memory with d_model features, nhead dividing d_model, d_model
    left to be inferred from tgt), sometimes not; sometimes 1-d or 3-d samples."""
    nhead, per_head = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    d_model = nhead * per_head + draw(st.sampled_from([0, 0, 0, 1]))
    kwargs = {"nhead": nhead, "dim_feedforward": draw(st.integers(1, 6)),
              "batch_first": draw(st.sampled_from([True, True, False])),
              "norm_first": draw(st.booleans()), "bias": draw(st.booleans()),
              "activation": draw(st.sampled_from(["relu", "gelu"]))}
    if draw(st.booleans()):
        kwargs["d_model"] = draw(st.sampled_from([d_model, d_model, d_model + 1]))
    t, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    memory_features = draw(st.sampled_from([d_model, d_model, d_model, d_model + 1]))

    def sample(length, features):
        rank = draw(st.sampled_from([2] * 6 + [1, 3]))
        return {1: (features,), 2: (length, features), 3: (2, length, features)}[rank]

    shapes = [sample(t, d_model), sample(s, memory_features)]
    dtype = draw(st.sampled_from(["float32"] * 5 + ["float64"]))
    return kwargs, shapes, dtype


@settings(max_examples=examples(150))
@given(case=cases())
def test_decoder_layer_agrees_with_torch(case):
    kwargs, shapes, dtype = case
    errors, ours = netspec_errors("TransformerDecoderLayer", kwargs, shapes, dtype,
                                  ("tgt", "memory"))
    theirs = torch_verdict({"d_model": shapes[0][-1], **kwargs}, shapes, dtype)
    if theirs is not None and ours is None and any(len(s) == 1 for s in shapes):
        # DELIBERATE, as TransformerEncoderLayer's: torch reads a batch of 1-d samples as
        # one unbatched sequence made of the batch (attention across samples)
        assert any("L×features" in m for m in errors), (case, errors)
        return
    assert ours == theirs, (case, errors, theirs)


@pytest.mark.parametrize("case", [
    ({"nhead": 2, "dim_feedforward": 4, "batch_first": True}, [(3, 4), (5, 4)], "float64"),
    ({"nhead": 2, "dim_feedforward": 4, "batch_first": True}, [(3, 4), (5, 4)], "float32"),
    ({"nhead": 2, "dim_feedforward": 4}, [(3, 4), (5, 4)], "float32"),  # lengths as batches
    ({"nhead": 2, "dim_feedforward": 4}, [(3, 4), (3, 4)], "float32"),
    ({"nhead": 2, "dim_feedforward": 4, "batch_first": True}, [(3, 4), (5, 6)], "float32"),
    ({"nhead": 3, "dim_feedforward": 4, "batch_first": True}, [(3, 4), (5, 4)], "float32"),
])
def test_chosen_cases_agree_with_torch(case):
    kwargs, shapes, dtype = case
    errors, ours = netspec_errors("TransformerDecoderLayer", kwargs, shapes, dtype,
                                  ("tgt", "memory"))
    assert ours == torch_verdict({"d_model": shapes[0][-1], **kwargs}, shapes, dtype), errors


@pytest.mark.parametrize("t,s", [(5, 7), (1, 3), (4, 4)])
@pytest.mark.parametrize("bias,norm_first", [(True, False), (False, True)])
def test_params_and_macs_equal_torchs(t, s, bias, norm_first):
    lt = REGISTRY["TransformerDecoderLayer"]
    kwargs = {"d_model": 16, "nhead": 4, "dim_feedforward": 24, "batch_first": True,
              "bias": bias, "norm_first": norm_first}
    a = Args.filled(lt, kwargs)
    # training mode: in eval, scaled_dot_product_attention takes a fused CPU kernel the
    # counter does not see (Q·Kᵀ and weights·V go uncounted), as for TransformerEncoderLayer
    layer = nn.TransformerDecoderLayer(**kwargs).train()
    assert lt.params(a, [(t, 16), (s, 16)]) == sum(p.numel() for p in layer.parameters())
    with FlopCounterMode(display=False) as counter:
        layer(torch.zeros(1, t, 16), torch.zeros(1, s, 16))
    assert counter.get_total_flops() == 2 * lt.macs(a, [(t, 16), (s, 16)], (t, 16))


def test_refusals_name_the_inputs_and_numbers():
    def message(text):
        return [d.message for d in netspec.check(text).errors]

    assert message(SPEC.replace("{nhead: 4, dim_feedforward: 32, batch_first: true}\n"
                                "    name: decoder", "{nhead: 5, batch_first: true}\n"
                                "    name: decoder")) == [
        "layer 2 'decoder' (TransformerDecoderLayer): d_model 16 is not divisible by nhead 5"]
    narrow = SPEC.replace("name: memory\n", "name: enc\n  - Linear: {out_features: 8}\n"
                          "    name: memory\n")
    assert message(narrow) == [
        "layer 3 'decoder' (TransformerDecoderLayer): the memory (6×8 from 'memory') has 8 "
        "features, but d_model is 16"]
    one = SPEC.replace("    from: [tgt, memory]\n", "")
    assert message(one) == [
        "layer 2 'decoder' (TransformerDecoderLayer): TransformerDecoderLayer takes two inputs "
        "(the target sequence tgt, and the encoder's output memory): write from: [a, b]"]
    shorter = ("name: enc\n  - Permute: [0, 2, 1]\n  - Linear: {out_features: 5}\n"
               "  - Permute: [0, 2, 1]\n    name: memory\n")  # a memory of length 5
    lengths = SPEC.replace("name: memory\n", shorter).replace(
        "32, batch_first: true}\n    name: decoder", "32}\n    name: decoder")
    assert netspec.check(lengths.replace("32}\n    name: decoder",
                                         "32, batch_first: true}\n    name: decoder")).ok
    assert "tgt's length 6 differs from memory's 5; write batch_first: true" in \
        message(lengths)[0]


def test_build_codegen_summary_render(tmp_path):
    result = netspec.check(SPEC)
    assert result.ok and result.output_shape == (6, 3)
    model = netspec.build(result).eval()
    assert type(model.decoder) is nn.TransformerDecoderLayer
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        expected = model.head(model.decoder(model.tgt(x), model.memory(x)))
        assert torch.equal(model(x), expected)
    source = generate(result, "class")
    assert "x = self.decoder(x, memory)" in source
    generated = load_generated(source, "seq2seq_net", tmp_path).Seq2Seq().eval()
    generated.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(generated(x), expected)
    summary = summarize(result)
    rows = {r.name: r for r in summary.rows}
    assert rows["decoder"].params == sum(p.numel() for p in model.decoder.parameters())
    with FlopCounterMode(display=False) as counter:
        model.train()(x[:1])
    assert counter.get_total_flops() == 2 * summary.macs
    dot = to_dot(result)
    assert "TransformerDecoderLayer" in dot and "d 16, 4 heads" in dot


class Decode(nn.Module):
    def __init__(self, masked: bool = False):
        super().__init__()
        self.masked = masked
        self.encoder = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True)
        self.embed = nn.Linear(16, 16)
        self.decoder = nn.TransformerDecoderLayer(16, 2, 24, activation="gelu",
                                                  batch_first=True, norm_first=True)

    def forward(self, x):
        memory = self.encoder(x)
        if self.masked:
            return self.decoder(self.embed(x), memory, tgt_is_causal=True)
        return self.decoder(self.embed(x), memory)


def test_import_round_trip():
    reference = Decode().eval()
    layers = model_to_spec(reference, (6, 16)).data["layers"]
    assert layers[2] == {"TransformerDecoderLayer": {"nhead": 2, "dim_feedforward": 24,
                                                     "activation": "gelu",
                                                     "batch_first": True, "norm_first": True},
                         "name": "decoder", "from": ["embed", "encoder"]}
    model = netspec.build(dumps({"netspec": 1, "name": "Decode", "input": [6, 16],
                                 "layers": layers})).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    with pytest.raises(ImportProblem, match="is called with tgt_is_causal=True, which a spec "
                       "cannot express"):
        model_to_spec(Decode(masked=True), (6, 16))


def test_onnx_export_verified_in_onnxruntime(tmp_path, capsys):
    from netspec.cli import main

    spec = tmp_path / "seq2seq.yaml"
    spec.write_text(SPEC)
    assert main(["export", str(spec), "-o", str(tmp_path / "seq2seq.onnx")]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out

"""The zoo's recurrent networks against hand-written PyTorch modules, written as the
tutorials write them: specs/zoo/seq2seq_attention.yaml (a GRU encoder-decoder whose decoder
starts from the encoder's final state, with dot-product attention) and specs/zoo/char_rnn.yaml
(the names tutorial's character RNN, an RNNCell stepped over the letters).  Weight for
weight (the same state_dict keys and shapes, strict load, outputs within 1e-5), every layer's
shape as check says (forward hooks on the reference), summary params = sum(numel) and MACs =
FlopCounterMode/2, check's inputs and outputs, render, class-style code, ONNX export."""

from __future__ import annotations

import json

import torch
from generated import load_generated
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from zoo_helpers import ZOO

import netspec
from netspec.emit import export as ex
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize

SEQ2SEQ = ZOO / "seq2seq_attention.yaml"
CHAR_RNN = ZOO / "char_rnn.yaml"


class Seq2SeqAttention(nn.Module):
    """The translation tutorial's encoder and attention decoder, batched, teacher-forced,
    with Luong's dot-product attention."""

    def __init__(self, source_vocab=1000, target_vocab=1200, embed=64, hidden=128):
        super().__init__()
        self.src_embed = nn.Embedding(source_vocab, embed)
        self.encoder = nn.GRU(embed, hidden, batch_first=True)
        self.tgt_embed = nn.Embedding(target_vocab, embed)
        self.decoder = nn.GRU(embed, hidden, batch_first=True)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, target_vocab)

    def forward(self, source, target):
        encoded, h_n = self.encoder(self.src_embed(source))
        decoded, _ = self.decoder(self.tgt_embed(target), h_n)  # from the encoder's state
        weights = torch.softmax(decoded @ encoded.transpose(1, 2), dim=-1)
        context = weights @ encoded
        combined = torch.tanh(self.combine(torch.cat([context, decoded], dim=-1)))
        return {"logits": self.out(combined), "attention": weights}


class CharRNN(nn.Module):
    """The names tutorial's character RNN, the RNNCell stepped over the letters."""

    def __init__(self, letters=57, hidden=128, languages=18):
        super().__init__()
        self.rnn = nn.RNNCell(letters, hidden)
        self.h2o = nn.Linear(hidden, languages)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line):
        hidden = torch.zeros(line.shape[0], self.rnn.hidden_size)
        for t in range(line.shape[1]):
            hidden = self.rnn(line[:, t], hidden)
        return self.softmax(self.h2o(hidden))


def _inputs(spec, batch: int, seed: int = 0) -> tuple:
    return ex.example_inputs(netspec.check(spec), batch, seed)


def _outputs(out) -> list[torch.Tensor]:
    return list(out.values()) if isinstance(out, dict) else [out]


def _weight_for_weight(spec, reference: nn.Module) -> nn.Module:
    """Same keys (in order) and shapes, parameter counts, strict load, the same outputs."""
    model = netspec.build(spec).eval()
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    count = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in model.parameters()) == count
    assert netspec.check(spec).total_params == summarize(spec).params == count
    model.load_state_dict(theirs, strict=True)
    for batch in (1, 3):
        xs = _inputs(spec, batch, seed=batch)
        with torch.no_grad():
            got, want = model(*xs), reference(*xs)
        assert type(got) is type(want)
        for a, b in zip(_outputs(got), _outputs(want), strict=True):
            assert a.shape == b.shape and (a - b).abs().max().item() <= 1e-5
            assert b.abs().max().item() > 1e-3  # the comparison means something
    return model


def _reference_hooks(spec, reference: nn.Module, batch: int = 2) -> dict[str, list]:
    """The shape of every output of each named module of the reference, call by call."""
    seen: dict[str, list] = {}
    hooks = [m.register_forward_hook(
        lambda m, i, o, n=n: seen.setdefault(n, []).append(
            tuple(o[0].shape) if isinstance(o, tuple) else tuple(o.shape)))
        for n, m in reference.named_modules() if n]
    with torch.no_grad():
        reference(*_inputs(spec, batch))
    for h in hooks:
        h.remove()
    return seen


def _check_shapes(spec, batch: int = 2) -> dict[str, tuple]:
    return {r.name: (batch, *r.output_shape) for r in netspec.check(spec).layers}


def _flop_counter_macs(reference: nn.Module, spec) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        reference(*_inputs(spec, 1))
    return counter.get_total_flops() // 2


def _generated_matches(spec, reference: nn.Module, tmp_path, name: str) -> str:
    source = generate(spec, "class")
    model = getattr(load_generated(source, f"zoo_{spec.stem}", tmp_path), name)().eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    xs = _inputs(spec, 2, seed=5)
    with torch.no_grad():
        for a, b in zip(_outputs(model(*xs)), _outputs(reference(*xs)), strict=True):
            assert (a - b).abs().max().item() <= 1e-5
    return source


def test_seq2seq_attention_against_a_hand_written_module(tmp_path):
    torch.manual_seed(0)
    reference = Seq2SeqAttention().eval()
    _weight_for_weight(SEQ2SEQ, reference)
    hooks, ours = _reference_hooks(SEQ2SEQ, reference), _check_shapes(SEQ2SEQ)
    for name in ("src_embed", "encoder", "tgt_embed", "decoder", "combine", "out"):
        assert hooks[name] == [ours[name]], name
    assert summarize(SEQ2SEQ).macs == _flop_counter_macs(reference, SEQ2SEQ)
    source = _generated_matches(SEQ2SEQ, reference, tmp_path, "Seq2SeqAttention")
    assert "def forward(self, source: torch.Tensor, target: torch.Tensor)" in source
    assert "self.decoder(out, encoder[1])[0]" in source


def test_seq2seq_check_render_and_onnx(tmp_path, capsys):
    from netspec.cli import main

    table = netspec.check(SEQ2SEQ).table()
    assert "inputs source 12 (int64), target 10 (int64)" in table
    assert "outputs (dict) logits=out 10×1200, attention=weights 10×12" in table
    assert main(["check", str(SEQ2SEQ), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["inputs"] == {"source": {"shape": [12], "dtype": "int64"},
                                "target": {"shape": [10], "dtype": "int64"}}
    assert report["returns"] == "dict" and report["outputs"] == {
        "logits": {"from": "out", "training_only": False, "shape": [10, 1200]},
        "attention": {"from": "weights", "training_only": False, "shape": [10, 12]}}
    decoder = next(r for r in report["layers"] if r["name"] == "decoder")
    assert decoder["output_shape"] == [10, 128] and decoder["from"] == ["tgt_embed",
                                                                        "encoder.h_n"]
    dot = to_dot(SEQ2SEQ)
    for label in ("@input.source", "@input.target", "@output.logits", "@output.attention",
                  'encoder -> decoder [label=" h_n: 1×128 "]'):  # the state handed over
        assert label in dot, label
    onnx_path = tmp_path / "seq2seq.onnx"
    # shorter sequences: torch.export unrolls a GRU over its steps (a minute for 12 + 10)
    shorter = SEQ2SEQ.read_text(encoding="utf-8").replace("shape: [12]", "shape: [4]")
    result = ex.export(shorter.replace("shape: [10]", "shape: [3]"), "onnx", onnx_path)
    assert result.ok and set(result.differences) == {2, 3} and result.scale > 1e-2
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    assert [i.name for i in graph.input] == ["source", "target"]
    assert [o.name for o in graph.output] == ["logits", "attention"]


def test_char_rnn_against_the_tutorials_loop(tmp_path):
    torch.manual_seed(0)
    reference = CharRNN().eval()
    model = _weight_for_weight(CHAR_RNN, reference)
    assert isinstance(model.rnn, nn.RNNCell)
    hooks, ours = _reference_hooks(CHAR_RNN, reference), _check_shapes(CHAR_RNN)
    # the reference's cell runs once per letter: each step gives one row of the loop's output
    assert hooks["rnn"] == [(2, *ours["rnn"][2:])] * ours["rnn"][1] and ours["rnn"][1] == 19
    assert hooks["h2o"] == [ours["h2o"]] and hooks["softmax"] == [ours["softmax"]]
    assert summarize(CHAR_RNN).macs == _flop_counter_macs(reference, CHAR_RNN)
    source = _generated_matches(CHAR_RNN, reference, tmp_path, "CharRNN")
    assert "class RNNCellLoop(nn.RNNCell):" in source and "self.rnn = RNNCellLoop(57, 128)" \
        in source
    assert "rnn -> rnn [label=\" h, each step \"" in to_dot(CHAR_RNN)

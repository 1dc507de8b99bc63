"""tie: {weight: embed.weight}: a parameter shared with an earlier entry's (a language
model's head tied to its embedding, as GPT-2's lm_head.weight = wte.weight): counted
once, one Parameter in the built model and the generated code, both state_dict keys."""

from __future__ import annotations

import pytest
import torch
from function_ops import load_generated
from torch import nn

import netspec
from netspec.emit.summary import summarize

SPEC = """\
netspec: 1
name: TinyLM
input: {shape: [16], dtype: int64}
layers:
  - Embedding: {num_embeddings: 50, embedding_dim: 32}
    name: embed
  - Linear: {out_features: 32}
    name: mix
  - Linear: {out_features: 50, bias: false}
    name: lm_head
    tie: {weight: embed.weight}
"""


class Reference(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.mix = nn.Linear(32, 32)
        self.lm_head = nn.Linear(32, 50, bias=False)
        self.lm_head.weight = self.embed.weight

    def forward(self, x):
        return self.lm_head(self.mix(self.embed(x)))


def test_counted_once_and_shared_in_build_and_generated_code(tmp_path):
    result = netspec.check(SPEC)
    assert result.ok, [d.format() for d in result.errors]
    reference = Reference()
    count = sum(p.numel() for p in reference.parameters())
    assert result.total_params == summarize(result).params == count == 50 * 32 + 32 * 32 + 32
    built = netspec.build(result)
    generated = load_generated(result, tmp_path, "TinyLM")()
    for model in (built, generated):
        assert model.lm_head.weight is model.embed.weight
        assert list(model.state_dict()) == list(reference.state_dict())
        assert sum(p.numel() for p in model.parameters()) == count
        model.load_state_dict(reference.state_dict(), strict=True)
        x = torch.randint(0, 50, (3, 16))
        loss = model(x).sum()
        loss.backward()
        with torch.no_grad():
            assert torch.equal(model(x), reference(x))
        assert model.embed.weight.grad is not None  # one parameter, both uses' gradients
    source = netspec.emit.codegen.generate(result)
    assert "        self.lm_head.weight = self.embed.weight  # tied" in source


@pytest.mark.parametrize(("old", "new", "message"), [
    ("tie: {weight: embed.weight}", "tie: {weight: mix.weight}",
     "tie: weight: weight is 50×32 but mix.weight is 32×32: tied weights must have one shape"),
    ("tie: {weight: embed.weight}", "tie: {bias: embed.weight}",
     "tie: bias: Linear has no parameter 'bias' to tie; it has weight"),
    ("tie: {weight: embed.weight}", "tie: {weight: embd.weight}",
     "tie: weight: no earlier entry here is named 'embd' (did you mean 'embed'?)"),
    ("tie: {weight: embed.weight}", "tie: {weight: embed.bias}",
     "tie: weight: 'embed' (Embedding) has no parameter 'bias'; it has weight"),
])
def test_mistakes(old, new, message):
    errors = [d.message for d in netspec.check(SPEC.replace(old, new)).errors]
    assert any(message in e for e in errors), errors


def test_styles_without_statements_refuse_a_tie():
    from netspec.emit.codegen import StyleError, generate

    with pytest.raises(StyleError, match=r"ties its weight to embed\.weight"):
        generate(netspec.check(SPEC), "ordereddict")

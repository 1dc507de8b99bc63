"""Named inputs (inputs:) and several outputs (outputs:, returns:): what check says, how
build and the generated code take and return them (a tuple, a dict, a namedtuple; outputs
computed only in training, as GoogLeNet's aux heads), and the mistakes."""

from __future__ import annotations

import pytest
import torch
from function_ops import load_generated
from generated import build_weights_for

import netspec
from netspec.emit.codegen import generate

SPEC = """\
netspec: 1
name: TwoTowers
inputs:
  image: [3, 8, 8]
  tokens: {shape: [5], dtype: int64}
outputs:
  logits: head
  parts: halves.1
  aux: {from: aux, training_only: true}
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3}
    name: conv
  - Flatten:
  - Linear: {out_features: 16}
    name: img
  - Embedding: {num_embeddings: 10, embedding_dim: 16}
    from: tokens
  - Mean: {dim: 1}
    name: txt
  - Add:
    from: [img, txt]
    name: joint
  - Chunk: {chunks: 2, dim: 1}
    name: halves
  - Linear: {out_features: 3}
    from: halves.0
    name: head
  - Linear: {out_features: 2}
    from: joint
    name: aux
"""


def example(batch: int = 2):
    return torch.randn(batch, 3, 8, 8), torch.randint(0, 10, (batch, 5))


def reference(m, image, tokens, training):
    joint = m.img(torch.flatten(m.conv(image), 1)) + getattr(m, "3")(tokens).mean(1)
    halves = torch.chunk(joint, 2, 1)
    out = {"logits": m.head(halves[0]), "parts": halves[1]}
    if training:
        out["aux"] = m.aux(joint)
    return out


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))


def test_check_shows_the_inputs_and_outputs():
    result = netspec.check(SPEC)
    assert result.ok, [d.format() for d in result.errors]
    table = result.table()
    assert "TwoTowers, inputs image 3×8×8, tokens 5 (int64)" in table
    assert "outputs (dict) logits=head 3, parts=halves.1 8, aux=aux 2 (training only)" in table
    data = result.as_json()
    assert data["inputs"] == {"image": {"shape": [3, 8, 8], "dtype": "float32"},
                              "tokens": {"shape": [5], "dtype": "int64"}}
    assert data["outputs"]["aux"] == {"from": "aux", "training_only": True, "shape": [2]}
    assert data["returns"] == "dict" and data["output_shape"] == [3]
    assert result.training_only() == {"aux"}


@pytest.mark.parametrize("training", [True, False])
def test_build_and_generated_code_take_and_return_them(tmp_path, training):
    result = netspec.check(SPEC)
    built = netspec.build(result).train(training)
    generated = load_generated(result, tmp_path, "TwoTowers")().train(training)
    # the unnamed Embedding is self.embedding there: build's weights load by position
    generated.load_state_dict(build_weights_for(
        generated, generate(result, "class"), built.state_dict()), strict=True)
    for batch in (2, 3):
        image, tokens = example(batch)
        with torch.no_grad():
            expected = reference(built, image, tokens, training)
            assert same(built(image, tokens), expected)
            assert same(generated(image, tokens), expected)
    source = netspec.generate(result) if hasattr(netspec, "generate") else ""
    if source:
        assert "def forward(self, image: torch.Tensor, tokens: torch.Tensor)" in source


def test_generated_forward_reads_like_torchvision():
    from netspec.emit.codegen import generate

    source = generate(netspec.check(SPEC))
    assert "def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> Any:" in source
    assert "        if self.training:\n            out2 = self.aux(joint)" in source
    assert ('        if self.training:\n            return {"logits": out, "parts": halves[1], '
            '"aux": out2}\n        return {"logits": out, "parts": halves[1]}') in source
    assert "Input: a batch of image: 3×8×8 samples and a batch of tokens: 5" in source


NAMEDTUPLE = """\
netspec: 1
name: Aux
input: [6]
returns: namedtuple
outputs:
  logits: fc
  aux_logits: {from: aux, training_only: true}
layers:
  - Linear: {out_features: 8}
    name: trunk
  - Linear: {out_features: 2}
    name: aux
  - Linear: {out_features: 3}
    from: trunk
    name: fc
"""


def test_namedtuple_in_training_and_the_tensor_in_eval(tmp_path):
    """As torchvision's GoogLeNet: GoogLeNetOutputs(logits, aux_logits2, aux_logits1) in
    training, the logits alone in eval, and the aux head not run in eval."""
    result = netspec.check(NAMEDTUPLE)
    assert result.ok, [d.format() for d in result.errors]
    built = netspec.build(result)
    generated = load_generated(result, tmp_path, "Aux")()
    generated.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(4, 6)
    for model in (built, generated):
        out = model.train()(x)
        assert type(out).__name__ == "AuxOutputs" and out._fields == ("logits", "aux_logits")
        assert out.logits.shape == (4, 3) and out.aux_logits.shape == (4, 2)
        calls: list[int] = []
        hook = model.aux.register_forward_hook(lambda *a, seen=calls: seen.append(1))
        y = model.eval()(x)
        hook.remove()
        assert isinstance(y, torch.Tensor) and y.shape == (4, 3) and not calls
        assert torch.equal(y, built.fc(built.trunk(x)))
    assert "AuxOutputs = namedtuple(\"AuxOutputs\", [\"logits\", \"aux_logits\"])" in \
        netspec.emit.codegen.generate(result)


def test_a_list_of_outputs_is_a_tuple(tmp_path):
    text = NAMEDTUPLE.replace("returns: namedtuple\n", "").replace(
        "outputs:\n  logits: fc\n  aux_logits: {from: aux, training_only: true}\n",
        "outputs: [fc, aux]\n")
    result = netspec.check(text)
    assert result.ok, [d.format() for d in result.errors]
    assert "outputs (tuple) fc 3, aux 2" in result.table()
    built = netspec.build(result).eval()
    generated = load_generated(result, tmp_path, "Aux")().eval()
    generated.load_state_dict(built.state_dict())
    x = torch.randn(2, 6)
    out = built(x)
    assert isinstance(out, tuple) and [o.shape[1] for o in out] == [3, 2]
    assert same(generated(x), out)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("  logits: head\n", "  logits: haed\n",
     "outputs: logits: no entry of layers: (or input) is named 'haed' (did you mean 'head'?)"),
    ("  parts: halves.1\n", "  parts: halves.4\n",
     "outputs: parts: 'halves' has no output '4'; it gives halves.0, halves.1"),
    ("  parts: halves.1\n", "  parts: halves\n",
     "outputs: parts: 'halves' gives 2 tensors; name one: halves.0, halves.1"),
    ("    name: txt\n", "    name: image\n",
     "layer 4: name 'image' is already an input (inputs:); choose another"),
    ("  image: [3, 8, 8]\n", "  class: [3, 8, 8]\n",
     "input name 'class' cannot be an argument of forward"),
    ("outputs:\n", "returns: namedtuple\noutputs:\n", None),
    ("  logits: head\n  parts: halves.1\n", "", "every output is training_only"),
    ("netspec: 1\n", "netspec: 1\ninput: [3]\n", "give input: (one input) or inputs:"),
])
def test_mistakes(old, new, message):
    text = SPEC.replace(old, new)
    result = netspec.check(text)
    if message is None:
        assert result.ok, [d.format() for d in result.errors]
        return
    errors = [d.message for d in result.errors]
    assert any(message in e for e in errors), errors


def test_render_draws_each_input_each_output_and_the_parts():
    from netspec.emit.render import to_dot

    dot = to_dot(SPEC)
    assert "<B>image</B>" in dot and "<B>tokens</B>" in dot and "5 int64" in dot
    assert "<B>logits</B>" in dot and "<B>aux</B> (training only)" in dot
    assert 'label=" 0: 8 "' in dot and 'label=" 1: 8 "' in dot  # halves.0, halves.1
    aux_edge = next(line for line in dot.splitlines() if '-> "@output.aux"' in line)
    assert "dashed" in aux_edge
    assert "image 3×8×8, tokens 5, logits 3, parts 8, aux 2" in dot


@pytest.mark.parametrize("suffix", ["onnx", "pt2"])
def test_export_takes_every_input_and_gives_every_eval_output(tmp_path, suffix):
    from netspec.emit.export import export

    report = export(SPEC, None, tmp_path / f"two.{suffix}")
    assert report.ok and set(report.differences) == {2, 3}, report
    assert max(report.differences.values()) < 1e-5
    if suffix == "onnx":
        import onnx

        graph = onnx.load(str(tmp_path / "two.onnx")).graph
        assert [i.name for i in graph.input] == ["image", "tokens"]
        assert [o.name for o in graph.output] == ["logits", "parts"]  # aux: training only


def test_build_command_dry_runs_every_input(tmp_path):
    import subprocess
    import sys

    spec = tmp_path / "two.yaml"
    spec.write_text(SPEC)
    run = subprocess.run([sys.executable, "-m", "netspec", "build", str(spec)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "dry run: (2, 3, 8, 8), (2, 5) -> (2, 3), (2, 8); static check said (2, 3), " \
           "(2, 8): agrees" in run.stdout


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s, "this one takes 2 inputs (image, tokens)"),
    (lambda s: s.replace("  tokens: {shape: [5], dtype: int64}\n", "").replace(
        "    from: tokens\n", "    from: image\n").replace(
        "Embedding: {num_embeddings: 10, embedding_dim: 16}", "Flatten:").replace(
        "Mean: {dim: 1}", "Linear: {out_features: 16}"), "returns several in eval"),
])
def test_train_says_what_it_cannot_feed(tmp_path, edit, message):
    import subprocess
    import sys

    spec = tmp_path / "two.yaml"
    spec.write_text(edit(SPEC) + "train:\n  data: digits\n  epochs: 1\n")
    run = subprocess.run([sys.executable, "-m", "netspec", "train", str(spec), "--runs",
                          str(tmp_path / "runs")], capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert message in run.stderr, run.stderr

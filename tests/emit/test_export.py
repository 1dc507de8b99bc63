"""netspec export: every zoo spec to ONNX (onnx.checker, onnxruntime), TorchScript and a
torch.export program, loaded back and compared with PyTorch at two batch sizes (the batch
dimension is dynamic); weights files; the command line's messages and exit statuses."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import onnx
import pytest
import torch
from zoo_helpers import ROOT, ZOO

import netspec
from netspec.cli import main
from netspec.emit import checkpoint as ckpt_io
from netspec.emit import export as ex

# one input and one output each (specs/zoo/seq2seq_attention.yaml, two inputs and a dict
# of outputs, is exported and verified in tests/test_zoo.py)
SPECS = [s for s in sorted(ZOO.glob("*.yaml")) if s.stem != "seq2seq_attention"]
# 572×572 U-Net, DenseNet-121 (slow to export) and the VGGs (138M parameters): batch 1 and 2
HEAVY = {"unet", "densenet121", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn"}
# networks of identical blocks exported with fewer of them (every op kind is still there):
# ViT-B/16's 12 encoder blocks take the ONNX exporter a minute, 2 of them 10 s; ConvNeXt
# keeps one CNBlock per stage, Swin-T the two blocks of its first stage and one of the
# others at a quarter of the channels; the mobile networks keep at most two blocks per stage
# (the first, which downsamples, and one with the residual or the channel split)
FEWER_BLOCKS = {
    "vit_b_16": lambda text: text.replace("count: 12", "count: 2"),
    "convnext_tiny": lambda text: re.sub(
        r"(\n +- CNBlock: \{dim: (\d+),[^\n]*)(\n +- CNBlock: \{dim: \2,[^\n]*)+", r"\1",
        text),
    "efficientnet_b0": lambda text: re.sub(  # stages of 3 or 4 blocks keep their first
        r"(\n +- MBConv: \{out: (\d+),[^\n]*)(\n +- MBConv: \{out: \2,[^\n]*){2,}", r"\1",
        text),
    "swin_t": lambda text: _fewer_narrower_swin(text),
    "mnasnet1_0": lambda text: re.sub(r"repeat: [34]\n", "repeat: 2\n", text),
    "regnet_y_400mf": lambda text: re.sub(r"count: [36],", "count: 2,", text),
    "shufflenet_v2_x1_0": lambda text: re.sub(r"repeat: [48]\n", "repeat: 2\n", text),
    # one block of the first and the last stage on 64×64 images: attention over a map
    # reduced 8 times and the full one, the stage's own patch embedding
    "pvt_v2_b0": lambda text: re.sub(r"\n +- Stage: \{dim: (64|160),[^\n]*", "", text)
    .replace("depth: 2,", "depth: 1,").replace("input: [3, 224, 224]", "input: [3, 64, 64]"),
    # the first block's first layer (window and grid attention, the shortcut) and the
    # classifier: the window sizes are fixed for 224×224 images (the full network: 4 min)
    "maxvit_t": lambda text: re.sub(
        r"\n      - layers:\n          - name: layers\n            layers:(?=\n  - |\n      - )",
        "", re.sub(r"\n +- MaxVitLayer: \{(out: (128|256|512)|[^\n]*sd_prob: 0\.02)[^\n]*", "",
                   text)),
    # the cell loop is unrolled over its steps: 4 letters of the 19
    "char_rnn": lambda text: text.replace("input: [19, 57]", "input: [4, 57]"),
    "inception_v3": lambda text: _lean_inception(text),
    "llama_tiny": lambda text: re.sub(r"repeat: 4\b", "repeat: 1", text),  # one decoder layer
    # two dense layers per block (of 6, 12, 24, 16): every transition still there
    "densenet121": lambda text: re.sub(r"count: (6|12|24|16),", "count: 2,", text),
    # U-Net at its smallest valid input, 188×188 (16k + 124; the declared 572×572 has 9×
    # the pixels), the padded one at 64×64: every skip, crop and up-convolution still there
    "unet": lambda text: text.replace("input: [1, 572, 572]", "input: [1, 188, 188]"),
    "unet_padded": lambda text: text.replace("input: [1, 256, 256]", "input: [1, 64, 64]"),
    **{vgg: lambda text: _narrow_vgg(text) for vgg in ("vgg11", "vgg11_bn", "vgg16",
                                                        "vgg16_bn")},
}


def _narrow_vgg(text: str) -> str:
    """VGG with a classifier of 256 features, not 4096 (its weights are 119 of 138 million
    parameters: half a gigabyte to write and load), on 64×64 images, which the adaptive
    pool still brings to 7×7: every layer still there."""
    return text.replace("out_features: 4096", "out_features: 256").replace(
        "input: [3, 224, 224]", "input: [3, 64, 64]")


def _fewer_narrower_swin(text: str) -> str:
    """Swin-T with its first stage (a block with shifted windows and one without) and one
    shifted block of each later stage (on 7×7 the window covers the input: the shift is
    dropped), at a quarter of the channels (8 per head): 5 of 12 blocks, every window op
    still there, 1/16 of the weights to write and load."""
    later = r"\n +- SwinBlock: \{dim: (192|384|768),"
    text = re.sub(later + r" heads: \d+, shift: 0,[^\n]*", "", text)
    text = re.sub(f"({later}[^\\n]*)(\\n +- SwinBlock: \\{{dim: \\2,[^\\n]*)+", r"\1", text)
    return re.sub(r"\b(out_channels|dim): (96|192|384|768)\b",
                  lambda m: f"{m[1]}: {int(m[2]) // 4}", text)


def _lean_inception(text: str) -> str:
    """Inception v3 with one module of each kind (A to E: 11 -> 5) at its smallest input,
    75×75 (1/16 of the pixels), so without the aux head, which needs 17×17 features and runs
    in training only (export writes the eval graph; googlenet's export keeps its aux heads)."""
    kept = len(text)
    text = re.sub(r"\n  - \{Inception[ACE]: [^\n]*name: Mixed_(5c|5d|6c|6d|7c)\}[^\n]*", "",
                  text)
    text = re.sub(r"returns: namedtuple\noutputs:\n(  [^\n]*\n)+", "", text)
    text = text.replace("  - {InceptionAux: {}, name: AuxLogits}\n", "")
    assert len(text) < kept - 300, "the lean copy's patterns no longer match the spec"
    return text.replace("input: [3, 299, 299]", "input: [3, 75, 75]")


SUFFIX = {"onnx": ".onnx", "torchscript": ".ts", "exported-program": ".pt2"}
LENET = ZOO / "lenet5.yaml"
TUDUI = ZOO / "tutorial_cifar10.yaml"

_reference: dict[Path, tuple] = {}


def reference(spec: Path):
    """The model of a zoo spec and its PyTorch outputs at two batch sizes, kept for the
    three formats (one spec at a time: the VGGs are 0.5 GB each)."""
    if spec not in _reference:
        _reference.clear()
        torch.manual_seed(0)
        result = netspec.check(lean(spec))
        model = netspec.build(result).eval()
        batches = (1, 2) if spec.stem in HEAVY else (2, 3)
        pairs = []
        for i, b in enumerate(batches):
            x = ex.example_input(result, b, seed=10 + i)
            with torch.no_grad():
                pairs.append((x, model(x)))
        _reference[spec] = model, pairs
    return _reference[spec]


def lean(spec: Path) -> Path | str:
    """The spec, or its text with fewer blocks (FEWER_BLOCKS)."""
    if spec.stem not in FEWER_BLOCKS:
        return spec
    text = spec.read_text(encoding="utf-8")
    fewer = FEWER_BLOCKS[spec.stem](text)
    assert fewer != text, spec
    return fewer


# exported to ONNX only (what their ops need in TorchScript is tested on the ops' own
# small specs): the reduced copies still take a minute or more each on a loaded VM
ONNX_ONLY = {"pvt_v2_b0", "maxvit_t", "swin_t"}
CASES = [(spec, fmt) for spec in SPECS for fmt in ex.FORMATS
         if spec.stem not in ONNX_ONLY or fmt == "onnx"]


@pytest.mark.parametrize("spec,fmt", CASES, ids=[f"{s.stem}-{f}" for s, f in CASES])
def test_zoo_round_trip(spec, fmt, tmp_path):
    model, pairs = reference(spec)
    path = tmp_path / f"{spec.stem}{SUFFIX[fmt]}"
    try:
        report = ex.export(lean(spec), fmt, path, model=model, verify=False)
        assert path.is_file() and report.bytes > 0
        if fmt == "onnx":
            onnx.checker.check_model(str(path), full_check=True)
            proto = onnx.load(str(path), load_external_data=False)
            opset = {o.domain: o.version for o in proto.opset_import}.get("", 0)
            assert opset >= 17, opset
            for value in (proto.graph.input[0], proto.graph.output[0]):
                assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
        elif fmt == "torchscript":
            assert report.method.startswith("torch.jit.script"), report.method  # not traced
            assert not report.notes
        run = ex.load_exported(path, fmt)
        for x, expected in pairs:
            got = run(x)
            assert tuple(got.shape) == tuple(expected.shape)
            difference = (got.double() - expected.double()).abs().max().item()
            assert difference <= ex.ATOL, (x.shape[0], difference)
            # the comparison means something: outputs far above the tolerance
            assert expected.abs().max().item() > 100 * ex.ATOL
    finally:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".data").unlink(missing_ok=True)


def test_text_lstm_is_scripted_around_a_traced_lstm(tmp_path):
    model, _ = reference(ZOO / "text_lstm.yaml")
    report = ex.export(ZOO / "text_lstm.yaml", "torchscript", tmp_path / "t.ts", model=model,
                       verify=False)
    assert report.method == "torch.jit.script (lstm traced: RNN output-only wrapper)"


ATTENTION = {
    "self": """\
netspec: 1
name: SelfAttention
input: [7, 16]
layers:
  - MultiheadAttention: {num_heads: 4, batch_first: true}
    name: attn
  - Linear: {out_features: 8}
""",
    "cross": """\
netspec: 1
name: CrossAttention
input: [7, 16]
layers:
  - Linear: {out_features: 12}
    name: k
  - Linear: {out_features: 20}
    name: v
    from: input
  - MultiheadAttention: {num_heads: 4, kdim: 12, vdim: 20, add_bias_kv: true, batch_first: true}
    from: [input, k, v]
    name: attn
""",
}


def _onnx_runs_as_torch(spec: str, path: Path, floor: float) -> None:
    """``spec`` exported to ONNX passes the checker, and onnxruntime runs it as PyTorch does
    at two batch sizes (the batch dynamic); ``floor``: the outputs' size, far above 1e-5."""
    torch.manual_seed(0)
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    model = netspec.build(result).eval()
    report = ex.export(spec, "onnx", path, model=model, verify=False)
    assert path.is_file() and report.bytes > 0
    onnx.checker.check_model(str(path), full_check=True)
    run = ex.load_exported(path, "onnx")
    for seed, batch in enumerate((2, 5)):
        x = ex.example_input(result, batch, seed=seed)
        with torch.no_grad():
            expected = model(x)
        got = run(x)
        assert tuple(got.shape) == (batch, *result.output_shape) == tuple(expected.shape)
        assert (got.double() - expected.double()).abs().max().item() <= 1e-5
        assert expected.abs().max().item() > floor


@pytest.mark.parametrize("name", list(ATTENTION))
def test_attention_to_onnx(name, tmp_path):
    """MultiheadAttention (three inputs, a tuple of which attn_output flows on) to ONNX."""
    _onnx_runs_as_torch(ATTENTION[name], tmp_path / f"{name}.onnx", floor=1e-2)


TENSOR_FUNCTIONS = {
    # attention written out: qkv chunks, heads by reshape/transpose, fused causal SDPA
    # beside matmul/div/softmax, stack, amax, roll, sum, pow, unsqueeze, interpolate by
    # scale and to a size
    "attention_parts": """\
netspec: 1
name: AttentionParts
input: [8, 16]
layers:
  - Linear: {out_features: 48}
    name: qkv
  - Chunk: {chunks: 3, dim: -1}
    name: parts
  - Reshape: {shape: [0, 0, 4, 4]}
    from: parts.0
    name: q
  - Transpose: [1, 2]
    name: qh
  - Reshape: {shape: [0, 0, 4, 4]}
    from: parts.1
  - Transpose: [1, 2]
    name: kh
  - Reshape: {shape: [0, 0, 4, 4]}
    from: parts.2
  - Transpose: [1, 2]
    name: vh
  - ScaledDotProductAttention: {is_causal: true}
    from: [qh, kh, vh]
    name: attn
  - Transpose: [2, 3]
    from: kh
    name: kt
  - Matmul:
    from: [qh, kt]
    name: scores
  - Div: {other: 2.0}
  - Softmax: {dim: -1}
    name: weights
  - Matmul:
    from: [weights, vh]
    name: manual
  - Stack: {dim: 1}
    from: [attn, manual]
  - Amax: {dim: 1}
  - Roll: {shifts: 1, dims: 2}
  - Sum: {dim: 1}
  - Pow: {exponent: 2}
  - Unsqueeze: 1
  - Interpolate: {scale_factor: 2, mode: nearest}
  - Interpolate: {size: [12, 6], mode: bilinear, align_corners: false}
  - Flatten
  - Linear: {out_features: 3}
""",
    # a ViT's token handling: a class token Parameter expanded over the batch, concat,
    # a position Parameter added, stochastic depth, split, select, narrow, mean, sub
    "token_ops": """\
netspec: 1
name: TokenOps
input: [6, 16]
layers:
  - Parameter: {shape: [1, 1, 16], init: normal, std: 0.02}
    name: class_token
  - Expand: {sizes: [-1, -1, -1]}
    from: [class_token, input]
    name: tokens
  - Concat: {dim: 1}
    from: [tokens, input]
    name: seq
  - Parameter: {shape: [1, 7, 16], init: normal, std: 0.02}
    name: position
  - Add:
    from: [seq, position]
    name: embedded
  - StochasticDepth: {p: 0.1, mode: row}
  - Split: {split_size_or_sections: [1, 6], dim: 1}
    name: halves
  - Select: {dim: 1, index: 0}
    from: halves.0
    name: cls
  - Narrow: {dim: 1, start: 1, length: 4}
    from: halves.1
  - Mean: {dim: 1}
    name: pooled
  - Sub:
    from: [cls, pooled]
  - Linear: {out_features: 5}
""",
}


@pytest.mark.parametrize("name", list(TENSOR_FUNCTIONS))
def test_tensor_functions_to_onnx(name, tmp_path):
    """The tensor functions of issue 12 to ONNX."""
    _onnx_runs_as_torch(TENSOR_FUNCTIONS[name], tmp_path / f"{name}.onnx", floor=1e-3)


# ------------------------------------------------------------------ the command line


def run_cli(capsys, *argv):
    status = main(["export", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


@pytest.mark.parametrize("fmt", ex.FORMATS)
def test_cli_writes_and_verifies_each_format(fmt, tmp_path, capsys):
    path = tmp_path / f"tudui{SUFFIX[fmt]}"
    status, out, err = run_cli(capsys, TUDUI, "-o", path)
    assert status == 0, err
    assert path.is_file()
    assert f"-> {path} ({fmt}," in out and "dynamic batch" in out
    assert "batch 2: " in out and "batch 3: " in out and out.rstrip().endswith("ok")


def test_format_from_flag_or_suffix(tmp_path, capsys):
    assert ex.format_for(None, "a.onnx") == "onnx"
    assert ex.format_for(None, "a.TS") == "torchscript"
    assert ex.format_for(None, "a.torchscript") == "torchscript"
    assert ex.format_for(None, "a.pt2") == "exported-program"
    assert ex.format_for("onnx", "a.pt2") == "onnx"
    with pytest.raises(ex.ExportError, match="cannot tell the format") as info:
        ex.format_for(None, "model.pt")
    assert info.value.status == 2
    status, _, err = run_cli(capsys, LENET, "-o", tmp_path / "model.pt")
    assert status == 2 and "--format" in err
    status, out, err = run_cli(capsys, LENET, "-o", tmp_path / "model.bin", "--format",
                               "exported-program")
    assert status == 0, err
    assert "exported-program" in out
    with pytest.raises(SystemExit) as info:
        main(["export", str(LENET), "-o", "x.onnx", "--format", "tflite"])
    assert info.value.code == 2


def test_spec_errors_are_positioned(tmp_path, capsys):
    broken = ROOT / "specs" / "broken" / "tutorial_in_features.yaml"
    status, _, err = run_cli(capsys, broken, "-o", tmp_path / "x.onnx")
    assert status == 1
    assert f"{broken}:13:27: error: layer 7 (Linear): in_features 1000" in err
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(netspec.SpecError):
        ex.export(broken, "onnx", tmp_path / "x.onnx")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("netspec: 1\ninput: [3, 8, 8]\nlayers:\n  - Conv2d: {out_channels: 4\n")
    status, _, err = run_cli(capsys, bad_yaml, "-o", tmp_path / "x.onnx")
    assert status == 1 and f"{bad_yaml}:" in err and ": error: " in err


def test_unreadable_files_and_bad_usage(tmp_path, capsys):
    status, _, err = run_cli(capsys, tmp_path / "nope.yaml", "-o", tmp_path / "x.onnx")
    assert status == 2 and "cannot read" in err
    status, _, err = run_cli(capsys, tmp_path, "-o", tmp_path / "x.onnx")
    assert status == 2 and "is a directory" in err
    status, _, err = run_cli(capsys, LENET, "-o", tmp_path / "no" / "x.onnx")
    assert status == 2 and "no folder" in err
    status, _, err = run_cli(capsys, LENET, "-o", tmp_path, "--format", "onnx")
    assert status == 2 and "is a directory" in err
    status, _, err = run_cli(capsys, LENET, "-o", tmp_path / "x.ts", "--fixed-batch", "0")
    assert status == 2


def test_fixed_batch_and_input_override(tmp_path, capsys):
    path = tmp_path / "lenet.onnx"
    status, out, err = run_cli(capsys, LENET, "-o", path, "--fixed-batch", "1")
    assert status == 0, err
    assert "fixed batch" in out and "batch 1: " in out and "batch 2: " not in out
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    spec = tmp_path / "pooled.yaml"
    spec.write_text(
        "netspec: 1\ninput: [3, 16, 16]\nlayers:\n  - Conv2d: {out_channels: 4, kernel_size: 3}"
        "\n  - AdaptiveAvgPool2d: 1\n  - Flatten\n  - Linear: {out_features: 2}\n"
    )
    path = tmp_path / "pooled.pt2"
    status, out, err = run_cli(capsys, spec, "-o", path, "--input", "3,40,24")
    assert status == 0, err
    x = torch.randn(3, 3, 40, 24)
    assert tuple(torch.export.load(str(path)).module()(x).shape) == (3, 2)


def test_opset_and_external_data(tmp_path, capsys, monkeypatch):
    path = tmp_path / "lenet.onnx"
    status, out, err = run_cli(capsys, LENET, "-o", path, "--opset", "17")
    assert status == 0, err
    assert "opset 17" in out
    assert {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""] == 17
    assert not (tmp_path / "lenet.onnx.data").exists()  # one self-contained file below 2 GB
    status, _, err = run_cli(capsys, LENET, "-o", path, "--opset", "16")
    assert status == 2 and "at least 17" in err
    status, _, err = run_cli(capsys, LENET, "-o", tmp_path / "x.ts", "--opset", "18")
    assert status == 2 and "ONNX only" in err
    monkeypatch.setattr(ex, "EXTERNAL_DATA_BYTES", 1000)  # as if the weights passed 2 GB
    path = tmp_path / "big.onnx"
    status, out, err = run_cli(capsys, LENET, "-o", path)
    assert status == 0, err
    assert "big.onnx.data beside it" in out and (tmp_path / "big.onnx.data").is_file()
    onnx.checker.check_model(str(path), full_check=True)


# ------------------------------------------------------------------ weights


def test_weights_from_a_state_dict(tmp_path, capsys):
    torch.manual_seed(1)
    trained = netspec.build(TUDUI).eval()
    weights = tmp_path / "tudui.pt"
    torch.save(trained.state_dict(), weights)
    path = tmp_path / "tudui.onnx"
    status, _, err = run_cli(capsys, TUDUI, "-o", path, "--weights", weights)
    assert status == 0, err
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = trained(x)
    got = ex.load_exported(path)(x)
    assert (got - expected).abs().max().item() <= ex.ATOL  # the file holds those weights
    report = ex.export(TUDUI, None, tmp_path / "tudui.ts", weights)
    assert report.ok and set(report.differences) == {2, 3}
    got = ex.load_exported(tmp_path / "tudui.ts")(x)
    assert (got - expected).abs().max().item() <= ex.ATOL


def test_weights_that_do_not_fit_name_the_keys(tmp_path, capsys):
    other = tmp_path / "tudui.pt"
    torch.save(netspec.build(TUDUI).state_dict(), other)
    status, _, err = run_cli(capsys, LENET, "-o", tmp_path / "x.onnx", "--weights", other)
    assert status == 1
    assert f"{other} does not fit {LENET}" in err
    assert "missing keys: fc3.weight, fc3.bias" in err
    assert "unexpected keys: conv3.weight, conv3.bias" in err
    assert "conv1.weight is 32×3×5×5 in the file, 6×1×5×5 in the spec" in err
    assert not (tmp_path / "x.onnx").exists()
    # one missing key, nothing else
    state = netspec.build(LENET).state_dict()
    del state["fc3.bias"]
    torch.save(state, other)
    with pytest.raises(ex.ExportError, match=r"does not fit .*: missing keys: fc3\.bias$"):
        ex.export(LENET, "torchscript", tmp_path / "x.ts", other)


def test_netspec_checkpoints_are_checked_against_the_spec(tmp_path, capsys):
    result = netspec.check(LENET)
    torch.manual_seed(2)
    trained = netspec.build(LENET).eval()
    checkpoint = tmp_path / "last.pt"
    ckpt_io.save(
        {"model": trained.state_dict(), "spec_hash": ckpt_io.spec_hash(result),
         "spec_layers": ckpt_io.spec_layers(result), "spec_name": "LeNet5",
         "spec_file": str(LENET)},
        checkpoint,
    )
    path = tmp_path / "lenet.pt2"
    status, _, err = run_cli(capsys, LENET, "-o", path, "--weights", checkpoint)
    assert status == 0, err
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(torch.export.load(str(path)).module()(x), trained(x))
    status, _, err = run_cli(capsys, LENET, "-o", tmp_path / "l.ts", "--weights", tmp_path)
    assert status == 0, err  # a run folder: its last.pt
    status, _, err = run_cli(capsys, TUDUI, "-o", tmp_path / "t.onnx", "--weights", checkpoint)
    assert status == 1
    assert "was trained from spec 'LeNet5'" in err and "layer 0 differs" in err


def test_unreadable_weights(tmp_path, capsys):
    out = tmp_path / "x.ts"
    status, _, err = run_cli(capsys, LENET, "-o", out, "--weights", tmp_path / "none.pt")
    assert status == 2 and "no such file" in err
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    status, _, err = run_cli(capsys, LENET, "-o", out, "--weights", garbage)
    assert status == 2 and "not a readable checkpoint" in err
    plain = tmp_path / "plain.pt"
    torch.save({"epochs": 3}, plain)
    status, _, err = run_cli(capsys, LENET, "-o", out, "--weights", plain)
    assert status == 2 and "neither a netspec checkpoint nor a model state_dict" in err


# ------------------------------------------------------------------ failures made clear


def test_unsupported_operator_names_the_layer(tmp_path, capsys):
    spec = tmp_path / "amp.yaml"
    spec.write_text(
        "netspec: 1\ninput: [3, 10, 10]\nlayers:\n  - Conv2d: {out_channels: 2, kernel_size: 1}"
        "\n  - AdaptiveMaxPool2d: 3\n    name: pool\n"
    )
    status, _, err = run_cli(capsys, spec, "-o", tmp_path / "amp.onnx")
    assert status == 1
    assert "ONNX export failed at layer pool (AdaptiveMaxPool2d): the operator " \
           "aten.adaptive_max_pool2d has no ONNX translation" in err
    for fmt in ("torchscript", "exported-program"):  # the other formats can express it
        status, _, err = run_cli(capsys, spec, "-o", tmp_path / f"amp{SUFFIX[fmt]}")
        assert status == 0, err


def test_verification_beyond_tolerance_fails(tmp_path, capsys, monkeypatch):
    real = ex.load_exported

    def off_by_a_little(path, fmt=None):
        run = real(path, fmt)
        return lambda x: run(x) + 1e-3

    monkeypatch.setattr(ex, "load_exported", off_by_a_little)
    status, out, err = run_cli(capsys, LENET, "-o", tmp_path / "x.ts")
    assert status == 1
    assert "EXCEEDS 0.0001" in out and "differs from PyTorch by 0.001" in err
    status, _, err = run_cli(capsys, LENET, "-o", tmp_path / "x.ts", "--atol", "0.01")
    assert status == 0, err


def test_missing_onnxruntime_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    path = tmp_path / "x.onnx"
    status, _, err = run_cli(capsys, LENET, "-o", path)
    assert status == 1
    assert "passes onnx.checker, but verifying it needs onnxruntime: pip install onnxruntime" \
        in err
    assert path.is_file()
    status, out, err = run_cli(capsys, LENET, "-o", path, "--no-verify")
    assert status == 0 and "verify" not in out


def test_script_failure_falls_back_to_trace_and_says_so(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Python builtin <built-in function id> is currently not supported")

    monkeypatch.setattr(torch.jit, "script", refuse)
    report = ex.export(LENET, "torchscript", tmp_path / "x.ts")
    assert report.ok and report.method == "torch.jit.trace"
    assert report.notes and "traced instead" in report.notes[0]
    assert set(report.differences) == {2, 3}  # the traced file keeps the batch dynamic

"""netspec summary: parameters, buffers and MACs against torch, the table, --json, --depth.

Parameters and buffers are compared with ``sum(numel())`` of the built module; MACs with
``torch.utils.flop_counter.FlopCounterMode`` (its FLOP count halved), which counts the
matrix multiplications and convolutions (mm, addmm, bmm, convolution, sdpa) and nothing
elementwise.  Whole zoo networks are counted on the meta device (shapes only, no
arithmetic: U-Net's 150 G MACs in milliseconds); ``test_meta_counts_are_real`` shows the
count on meta is the count of a real CPU forward.  oneDNN is switched off while counting:
with it, the CPU LSTM is one fused kernel FlopCounterMode does not see (0 FLOPs); without
it, torch runs the LSTM as the addmm per step it counts.  Likewise attention is counted on
scaled_dot_product_attention's math kernel (two matmuls): torch's fused CPU kernel, which
MultiheadAttention runs when called with need_weights=False as netspec and torchvision call
it, reports 0 FLOPs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import examples
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from oracle import spec_text, to_torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.cli import main
from netspec.emit.summary import summarize
from netspec.ops import REGISTRY
from netspec.ops.declare import LayerType
from netspec.ops.torch_side import torch_class

ROOT = Path(__file__).resolve().parents[2]
ZOO = sorted((ROOT / "specs" / "zoo").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "specs").glob("*.yaml"))
torch.set_num_threads(1)


@contextmanager
def counting():
    """FlopCounterMode with oneDNN off and attention on the math kernel (see the module
    docstring), warnings quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.backends.mkldnn.flags(enabled=False), sdpa_kernel(SDPBackend.MATH), \
                FlopCounterMode(display=False) as f:
            yield f


def torch_macs(model: torch.nn.Module, shape, dtype: str, device: str = "meta",
               train: bool = False, others: tuple = ()) -> float:
    """FlopCounterMode's count of one forward pass at batch 1, halved; ``others``: the
    (shape, dtype) of the inputs after the first, where the network has several."""
    xs = [torch.zeros((1, *s), dtype=getattr(torch, d), device=device)
          for s, d in [(shape, dtype), *others]]
    model.train(train)
    with counting() as f, torch.set_grad_enabled(train):
        model(*xs)
    return f.get_total_flops() / 2


def relative(ours: int, theirs: float) -> float:
    return abs(ours - theirs) / max(theirs, 1)


# ---------------------------------------------------------------- whole networks


@pytest.mark.parametrize("spec", ZOO + EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_counts_match_torch(spec):
    s = summarize(spec)
    with torch.device("meta"):  # shapes only: no weight initialisation, no arithmetic
        model = netspec.build(spec)
    assert s.params == sum(p.numel() for p in model.parameters())
    assert s.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert s.buffers == sum(b.numel() for b in model.buffers())
    assert s.buffer_bytes == sum(b.numel() * b.element_size() for b in model.buffers())
    assert s.param_bytes == sum(p.numel() * p.element_size() for p in model.parameters())
    others = [(i.shape, i.dtype) for i in netspec.check(spec).network.all_inputs[1:]]
    theirs = torch_macs(model, s.input_shape, s.input_dtype, others=others)
    assert theirs > 0
    assert relative(s.macs, theirs) <= 0.01, (s.macs, theirs)


@pytest.mark.parametrize("name", ["resnet18", "text_lstm", "googlenet"])
def test_meta_counts_are_real(name):
    """FlopCounterMode counts the same on meta tensors as in a real CPU forward pass."""
    spec = ROOT / "specs" / "zoo" / f"{name}.yaml"
    s = summarize(spec)
    torch.manual_seed(0)
    real = torch_macs(netspec.build(spec), s.input_shape, s.input_dtype, device="cpu")
    with torch.device("meta"):
        meta = torch_macs(netspec.build(spec), s.input_shape, s.input_dtype)
    assert real == meta == s.macs


@pytest.mark.parametrize("name", ["vit_b_16", "convnext_tiny", "llama_tiny"])
def test_macs_of_the_modern_zoo_are_flop_counter_s(name):
    """Summary's MACs are exactly FlopCounterMode's total / 2 on the built model, attention
    included: on the CPU in training mode, as in eval the fused attention kernel (torch's
    MultiheadAttention fast path) is invisible to the counter; and on meta in eval.  Llama's
    grouped-query heads are counted as the math kernel runs them, repeated to the query's."""
    spec = ROOT / "specs" / "zoo" / f"{name}.yaml"
    s = summarize(spec)
    torch.manual_seed(0)
    real = torch_macs(netspec.build(spec), s.input_shape, s.input_dtype, device="cpu",
                      train=True)
    with torch.device("meta"):
        meta = torch_macs(netspec.build(spec), s.input_shape, s.input_dtype)
    assert real == meta == s.macs


def test_per_layer_macs_of_a_zoo_network():
    """Every leaf row of ResNet-50 against FlopCounterMode's per-module count."""
    spec = ROOT / "specs" / "zoo" / "resnet50.yaml"
    s = summarize(spec)
    with torch.device("meta"):
        model = netspec.build(spec)
    x = torch.zeros((1, *s.input_shape), device="meta")
    model.eval()
    with counting() as f, torch.no_grad():
        model(x)
    root = type(model).__name__  # FlopCounterMode names modules Sequential.layer1.0.conv1
    counts = {k.removeprefix(root + "."): v for k, v in f.get_flop_counts().items()}
    leaves = [r for r in s.rows if r.kind == "layer"]
    assert len(leaves) > 100
    for r in leaves:
        theirs = sum(counts.get(r.qualname, {}).values()) / 2
        assert r.macs == theirs, (r.qualname, r.macs, theirs)


def test_batch_and_memory():
    s = summarize(ROOT / "specs" / "zoo" / "resnet18.yaml", batch=32)
    t = s.totals()
    assert t["macs_batch"] == 32 * t["macs"] == 32 * 1_814_073_344
    assert t["input_bytes"] == 32 * 3 * 224 * 224 * 4
    one = summarize(ROOT / "specs" / "zoo" / "resnet18.yaml").totals()
    # torchinfo prints 0.60 / 39.75 / 46.76 MB for ResNet-18 at batch 1
    assert round(one["input_bytes"] / 1e6, 2) == 0.60
    assert round(one["forward_backward_bytes"] / 1e6, 2) == 39.75
    assert round(one["param_bytes"] / 1e6, 2) == 46.76
    assert t["forward_backward_bytes"] == 32 * one["forward_backward_bytes"]
    assert t["total_bytes"] == (t["input_bytes"] + t["forward_backward_bytes"]
                                + t["param_bytes"] + t["buffer_bytes"])
    # token ids are int64 (8 bytes); the embedding hands on float32
    lstm = summarize(ROOT / "specs" / "zoo" / "text_lstm.yaml", batch=4)
    assert lstm.input_bytes == 4 * 32 * 8
    assert lstm.activation_bytes == 4 * 4 * (32 * 64 + 32 * 128 + 4096 + 4096 + 4)


# ---------------------------------------------------------------- one layer at a time


def one_layer(type_name: str, kwargs: dict, sample: tuple, train: bool = False):
    """(our MACs, buffers) of a one-layer spec and FlopCounterMode's MACs, torch's buffers;
    None when netspec refuses the layer."""
    result = netspec.check(spec_text(type_name, kwargs, sample))
    if not result.ok:
        return None
    s = summarize(result)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch_class(type_name)(**to_torch(type_name, result.layers[0].kwargs))
    theirs = torch_macs(module, sample, "float32", device="cpu", train=train)
    buffers = sum(b.numel() for b in module.buffers())
    return (s.macs, s.buffers), (theirs, buffers)


def size(data, n: int, lo: int, hi: int):
    if data.draw(st.booleans()):
        return data.draw(st.integers(lo, hi))
    return data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transposed"])
@settings(max_examples=examples(25))
@given(data=st.data())
def test_conv_macs(n, transposed, data):
    groups = data.draw(st.sampled_from([1, 1, 2, 3]))
    kwargs = {
        "in_channels": groups * data.draw(st.integers(1, 3)),
        "out_channels": groups * data.draw(st.integers(1, 3)),
        "kernel_size": size(data, n, 1, 3),
        "stride": size(data, n, 1, 3),
        "dilation": size(data, n, 1, 2),
        "groups": groups,
        "bias": data.draw(st.booleans()),
    }
    if transposed:
        kwargs["padding"] = size(data, n, 0, 2)
        kwargs["output_padding"] = size(data, n, 0, 1)
    else:
        kwargs["padding"] = data.draw(st.one_of(st.just("valid"), st.just("same"),
                                                st.integers(0, 2)))
        if kwargs["padding"] == "same":
            kwargs["stride"] = 1
        kwargs["padding_mode"] = data.draw(st.sampled_from(["zeros", "reflect", "circular"]))
    spatial = tuple(data.draw(st.integers(3, 9 if n < 3 else 5)) for _ in range(n))
    got = one_layer(f"ConvTranspose{n}d" if transposed else f"Conv{n}d", kwargs,
                    (kwargs["in_channels"], *spatial))
    assume(got is not None)
    (ours, _), (theirs, _) = got
    assert ours == theirs, (kwargs, spatial)


@settings(max_examples=examples(30))
@given(data=st.data())
def test_linear_macs(data):
    features = data.draw(st.integers(1, 16))
    sample = (*data.draw(st.lists(st.integers(1, 5), max_size=2)), features)
    kwargs = {"out_features": data.draw(st.integers(1, 16)), "bias": data.draw(st.booleans())}
    (ours, _), (theirs, _) = one_layer("Linear", kwargs, sample)
    assert ours == theirs, (kwargs, sample)


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
@settings(max_examples=examples(20))
@given(data=st.data())
def test_recurrent_macs(kind, data):
    hidden = data.draw(st.integers(2, 12))
    kwargs = {
        "hidden_size": hidden,
        "num_layers": data.draw(st.integers(1, 3)),
        "bias": data.draw(st.booleans()),
        "batch_first": True,
        "bidirectional": data.draw(st.booleans()),
    }
    if kind == "LSTM":
        kwargs["proj_size"] = data.draw(st.integers(0, hidden - 1))
    sample = (data.draw(st.integers(1, 6)), data.draw(st.integers(1, 10)))
    (ours, _), (theirs, _) = one_layer(kind, kwargs, sample)
    assert ours == theirs > 0, (kwargs, sample)


@settings(max_examples=examples(15))
@given(data=st.data())
def test_transformer_encoder_macs(data):
    nhead = data.draw(st.integers(1, 4))
    kwargs = {
        "d_model": nhead * data.draw(st.integers(1, 4)),
        "nhead": nhead,
        "dim_feedforward": data.draw(st.integers(1, 24)),
        "batch_first": True,
        "norm_first": data.draw(st.booleans()),
        "bias": data.draw(st.booleans()),
    }
    sample = (data.draw(st.integers(1, 8)), kwargs["d_model"])
    # training mode: eval + no_grad takes the fused fast path, invisible to the counter
    (ours, _), (theirs, _) = one_layer("TransformerEncoderLayer", kwargs, sample, train=True)
    assert ours == theirs, (kwargs, sample)


@pytest.mark.parametrize("family", ["BatchNorm", "InstanceNorm"])
@pytest.mark.parametrize("n", [1, 2, 3])
@settings(max_examples=examples(8))
@given(data=st.data())
def test_norm_buffers(family, n, data):
    kwargs = {"affine": data.draw(st.booleans()),
              "track_running_stats": data.draw(st.booleans())}
    sample = (data.draw(st.integers(1, 4)), *(3,) * n)
    (macs, ours), (theirs_macs, theirs) = one_layer(f"{family}{n}d", kwargs, sample)
    assert ours == theirs and macs == theirs_macs == 0, kwargs


def test_layers_without_macs_count_zero_in_torch():
    """The zoo's elementwise layers (ReLU, BN, pools, dropout, upsampling, ...) have no MAC
    rule: FlopCounterMode sees no matmul or convolution in them either."""
    types = {}
    for spec in ZOO + EXAMPLES:
        for top in netspec.check(spec).layers:
            for _, r in top.walk():
                if r.kind == "layer" and r.type not in types and \
                        not REGISTRY[r.type].takes_none:  # a Parameter runs on no input
                    types[r.type] = r
    zero = [t for t in types if _default_macs(t)]
    assert {"ReLU", "BatchNorm2d", "MaxPool2d", "Dropout", "Flatten", "Embedding", "Mean",
            "Slice", "Permute"} <= set(zero)
    for t in zero:
        r = types[t]
        dtype = "int64" if REGISTRY[t].input_dtype == "int" else "float32"
        # a one-layer network built by netspec: function ops (Mean, Slice, Permute) are
        # called as the zoo's models call them
        kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in r.kwargs.items()}
        model = netspec.build(spec_text(t, kwargs, r.input_shape, dtype))
        with counting() as f, torch.no_grad():
            model.eval()(torch.zeros((1, *r.input_shape), dtype=getattr(torch, dtype)))
        assert f.get_total_flops() == 0, t


def _default_macs(type_name: str) -> bool:
    """The layer type declares no MAC rule (the default, which is 0)."""
    default = LayerType.__dataclass_fields__["macs"].default
    return REGISTRY[type_name].macs is default


# ---------------------------------------------------------------- output


GOLDEN = """\
specs/tutorial_cifar10.yaml: Tudui, input 3×32×32, batch 1; shapes and MACs per sample
======================================================================
Layer (type)               Output shape   Params   Buffers        MACs
======================================================================
conv1 (Conv2d)                 32×32×32    2,432        --   2,457,600
pool1 (MaxPool2d)              32×16×16       --        --          --
conv2 (Conv2d)                 32×16×16   25,632        --   6,553,600
pool2 (MaxPool2d)                32×8×8       --        --          --
conv3 (Conv2d)                   64×8×8   51,264        --   3,276,800
pool3 (MaxPool2d)                64×4×4       --        --          --
flatten (Flatten)                  1024       --        --          --
fc1 (Linear)                         64   65,600        --      65,536
fc2 (Linear)                         10      650        --         640
======================================================================
Params: 145,578 (trainable 145,578, non-trainable 0)
Buffers: 0
Output: 10
MACs: 12.4M per sample
----------------------------------------------------------------------
Input size (MB): 0.01
Forward/backward pass size (MB): 0.36
Params size (MB): 0.58
Buffers size (MB): 0.00
Estimated total size (MB): 0.96
======================================================================
"""


def run_cli(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "netspec", *argv], cwd=cwd,
                          capture_output=True, text=True)


def test_golden_table(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["summary", "specs/tutorial_cifar10.yaml"]) == 0
    assert capsys.readouterr().out == GOLDEN


def test_depth(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = "specs/zoo/resnet18.yaml"
    s = summarize(spec)
    tables = {}
    for depth in (None, 1, 2):
        assert main(["summary", spec] + ([] if depth is None else ["--depth", str(depth)])) == 0
        tables[depth] = capsys.readouterr().out
    top = [line for line in tables[1].splitlines() if line.startswith("layer")]
    assert [line.split()[0] for line in top] == ["layer1", "layer2", "layer3", "layer4"]
    assert "  0 (BasicBlock)" not in tables[1]
    assert "  0 (BasicBlock)" in tables[2] and "conv1 (Conv2d)" in tables[2]
    assert "    conv1 (Conv2d)" not in tables[2] and "    conv1 (Conv2d)" in tables[None]
    # the totals do not depend on what is shown
    assert tables[1].split("=\nParams")[1] == tables[None].split("=\nParams")[1]
    assert len(s.visible(1)) == 11 and len(s.visible(2)) == 19 and len(s.visible()) == len(s.rows)


def test_json(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["summary", "specs/zoo/resnet50.yaml", "--json", "--batch", "8",
                 "--depth", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    s = summarize("specs/zoo/resnet50.yaml", batch=8)
    assert data == {"ok": True, "warnings": [], **json.loads(json.dumps(s.as_json(2)))}
    assert set(data) == {"ok", "file", "name", "input_shape", "input_dtype", "output_shape",
                         "batch", "rows", "totals", "warnings"}
    assert data["input_shape"] == [3, 224, 224] and data["batch"] == 8
    row = data["rows"][0]
    assert set(row) == {"depth", "name", "qualname", "type", "kind", "output_shape", "params",
                        "trainable_params", "buffers", "macs"}
    assert row == {"depth": 1, "name": "conv1", "qualname": "conv1", "type": "Conv2d",
                   "kind": "layer", "output_shape": [64, 112, 112], "params": 9408,
                   "trainable_params": 9408, "buffers": 0, "macs": 118_013_952}
    assert max(r["depth"] for r in data["rows"]) == 2
    nested = next(r for r in data["rows"] if r["qualname"] == "layer1.0")
    assert nested["depth"] == 2 and nested["kind"] == "block"
    totals = data["totals"]
    assert set(totals) == {"params", "trainable_params", "non_trainable_params", "buffers",
                           "macs", "macs_batch", "training_macs", "input_bytes",
                           "activation_bytes",
                           "forward_backward_bytes", "param_bytes", "buffer_bytes",
                           "total_bytes"}
    assert totals["params"] == 25_557_032 == sum(r["params"] for r in data["rows"]
                                                 if r["depth"] == 1)
    assert totals["macs"] == sum(r["macs"] for r in data["rows"] if r["depth"] == 1)


def test_input_override(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["summary", "specs/zoo/vgg16.yaml", "--input", "3,32,32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [3, 32, 32]
    assert data["totals"]["macs"] == summarize(ROOT / "specs" / "zoo" / "vgg16.yaml",
                                               input_shape=(3, 32, 32)).macs < 1e9


def test_errors_and_exit_codes(tmp_path):
    broken = run_cli("summary", "specs/broken/tutorial_in_features.yaml")
    assert broken.returncode == 1 and broken.stdout == ""
    assert broken.stderr.startswith("specs/broken/tutorial_in_features.yaml:13:27: error: "
                                    "layer 7 (Linear): in_features 1000")
    as_json = run_cli("summary", "specs/broken/tutorial_in_features.yaml", "--json")
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and data["ok"] is False
    assert (data["errors"][0]["line"], data["errors"][0]["col"]) == (13, 27)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("netspec: 1\ninput: [3, 8, 8]\nlayers: [ReLU\n")
    assert run_cli("summary", str(bad_yaml)).returncode == 1
    missing = run_cli("summary", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert run_cli("summary", str(tmp_path)).returncode == 2
    assert run_cli("summary", "specs/lenet5.yaml", "--batch", "0").returncode == 2
    assert run_cli("summary", "specs/lenet5.yaml", "--depth", "-1").returncode == 2
    assert run_cli("summary", "specs/lenet5.yaml", "--depth", "0").returncode == 2
    helped = run_cli("summary", "--help")
    assert helped.returncode == 0 and "examples:" in helped.stdout and "--batch" in helped.stdout
    with pytest.raises(netspec.SpecError):
        summarize(ROOT / "specs" / "broken" / "tutorial_in_features.yaml")


def test_no_torch_import():
    code = ("import sys; from netspec.cli import main; "
            "main(['summary', 'specs/zoo/googlenet.yaml', '--depth', '1']); "
            "main(['summary', 'specs/zoo/text_lstm.yaml', '--json']); "
            "from netspec.emit.summary import summarize; summarize('specs/zoo/unet.yaml').table(); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert "inception3a (Inception)" in done.stdout


def test_training_only_outputs_count_in_training_only():
    """GoogLeNet's aux heads run in training only: the summary's MACs are eval's, its
    training_macs training's, each FlopCounterMode's count in that mode."""
    spec = ROOT / "specs" / "zoo" / "googlenet.yaml"
    s = summarize(spec)
    with torch.device("meta"):
        model = netspec.build(spec)
        assert torch_macs(model, s.input_shape, s.input_dtype) == s.macs
        assert torch_macs(model, s.input_shape, s.input_dtype, train=True) == s.training_macs
    assert s.training_macs > s.macs
    assert {r.name for r in s.rows if r.training_only} == {"aux1", "aux2"}
    assert "1.50G per sample in eval; 1.51G in training" in s.table()

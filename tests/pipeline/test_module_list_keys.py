"""Entries named by a ModuleList key path (convs.3, fuse.1.0): a ModuleList's modules each
called where its own input is, as Res2Net's `sp = self.convs[i](sp + spx[i])` and HRNet's
`y = y + self.fuse_layers[i][j](x[j])` call them.

A hand-written spec against a hand-written torch module of the same structure: the same
state_dict keys and shapes, a strict load, equal outputs; check's and summary's counts; the
generated code; the diagram; every mistake a positioned error; and the importer writing
such modules back by their key paths (timm's own Bottle2neck among them)."""

from __future__ import annotations

import pytest
import torch
from function_ops import import_round_trip, load_generated
from generated import build_weights_for
from torch import nn
from zoo_helpers import key_shapes, with_running_statistics

import netspec
from netspec.emit.codegen import StyleError, generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize

SPEC = """\
netspec: 1
name: Res2Fuse
input: [8, 8, 8]
layers:
  - Conv2d: {out_channels: 12, kernel_size: 1, bias: false}
    name: conv1
  - Split: {split_size_or_sections: 4, dim: 1}
    name: spx
  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1, bias: false}
    name: convs.0
    from: spx.0
  - BatchNorm2d:
    name: bns.0
  - ReLU:
    name: sp0
  - Add:
    from: [sp0, spx.1]
  - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1, bias: false}
    name: convs.1
  - BatchNorm2d:
    name: bns.1
  - ReLU:
    name: sp1
  - Concat:
    from: [sp0, sp1, spx.2]
    name: y
  - Identity:
    name: fuse.0.0
  - Conv2d: {out_channels: 12, kernel_size: 1}
    name: fuse.0.1
    from: sp1
  - Add:
    from: [fuse.0.0, fuse.0.1]
    name: fused0
  - Conv2d: {out_channels: 12, kernel_size: 1}
    name: fuse.1.0
    from: y
  - Conv2d: {out_channels: 12, kernel_size: 3, padding: 1}
    name: fuse.1.1
    from: sp1
  - Add:
    from: [fuse.1.0, fuse.1.1]
    name: fused1
  - Add:
    from: [fused0, fused1]
"""


class Res2Fuse(nn.Module):
    """What SPEC says, written as timm writes Res2Net's Bottle2neck and HRNet's fuse."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 12, 1, bias=False)
        self.convs = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1, bias=False)
                                    for _ in range(2)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(4) for _ in range(2)])
        self.fuse = nn.ModuleList([
            nn.ModuleList([nn.Identity(), nn.Conv2d(4, 12, 1)]),
            nn.ModuleList([nn.Conv2d(12, 12, 1), nn.Conv2d(4, 12, 3, padding=1)])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spx = torch.split(self.conv1(x), 4, 1)
        outs, sp = [], spx[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            sp = spx[i] if i == 0 else sp + spx[i]
            sp = torch.relu(bn(conv(sp)))
            outs.append(sp)
        xs = [torch.cat([*outs, spx[-1]], 1), sp]
        fused = []
        for row in self.fuse:
            y = None
            for j, f in enumerate(row):
                y = f(xs[j]) if y is None else y + f(xs[j])
            fused.append(y)
        return fused[0] + fused[1]


def _reference() -> Res2Fuse:
    torch.manual_seed(0)
    return with_running_statistics(Res2Fuse())


def test_built_is_the_module_lists_weight_for_weight():
    reference = _reference()
    built = netspec.build(SPEC).eval()
    assert isinstance(built.convs, nn.ModuleList) and isinstance(built.fuse[1], nn.ModuleList)
    assert key_shapes(built) == key_shapes(reference)
    built.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 8, 8, 8)
    with torch.no_grad():
        assert torch.equal(built(x), reference(x))


def test_check_counts_each_module_under_its_key_path():
    reference = _reference()
    result = netspec.check(SPEC)
    assert result.ok, [d.format() for d in result.errors]
    by_name = {n.name: n for n in result.layers}
    for key in ("convs.0", "convs.1", "bns.1", "fuse.0.1", "fuse.1.1"):
        assert by_name[key].qualname == key
        assert by_name[key].params == sum(
            p.numel() for p in reference.get_submodule(key).parameters())
    assert by_name["fuse.1.1"].sources == ["sp1"]
    assert result.total_params == sum(p.numel() for p in reference.parameters())


def test_generated_code_holds_the_module_lists_and_loads_the_same_weights(tmp_path):
    reference = _reference()
    result = netspec.check(SPEC)
    source = generate(result, "class")
    assert "self.convs = nn.ModuleList(" in source
    assert "self.convs[1](" in source and "self.fuse[1][0](y)" in source
    generated = load_generated(result, tmp_path, "Res2Fuse")().eval()
    assert key_shapes(generated) == key_shapes(reference)
    weights = build_weights_for(generated, source, reference.state_dict())
    generated.load_state_dict(weights, strict=True)
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        assert torch.equal(generated(x), reference(x))


@pytest.mark.parametrize("style", ["sequential", "ordereddict", "add-module"])
def test_sequential_styles_refuse_a_module_list_by_its_key(style):
    spec = ("netspec: 1\ninput: [4, 6, 6]\nlayers:\n"
            "  - Conv2d: {out_channels: 4, kernel_size: 1}\n    name: convs.0\n"
            "  - Conv2d: {out_channels: 4, kernel_size: 1}\n    name: convs.1\n")
    with pytest.raises(StyleError, match=r"'convs.0' is module 0 of the nn.ModuleList "
                                         r"'convs', which an nn.Sequential cannot hold"):
        generate(netspec.check(spec), style)


def test_summary_and_render_name_each_module_by_its_key():
    reference = _reference()
    result = netspec.check(SPEC)
    rows = {r.qualname: r for r in summarize(result).rows}
    for key in ("convs.0", "bns.0", "fuse.1.0", "fuse.1.1"):
        assert rows[key].params == sum(
            p.numel() for p in reference.get_submodule(key).parameters())
    dot = to_dot(result)
    # each from: reaches its own entry: the key path is the entry, not a part of 'convs'
    assert 'spx -> "convs.0" [label=" 0: 4×8×8 "' in dot
    assert '"fuse.0.0" -> fused0' in dot and 'sp1 -> "fuse.1.1"' in dot


def test_onnx_export_runs_the_module_lists(tmp_path):
    pytest.importorskip("onnxruntime")
    from netspec.emit.export import export

    report = export(SPEC, "onnx", tmp_path / "res2fuse.onnx")
    assert report.differences and report.ok, report.differences


GAP = """\
  - Conv2d: {out_channels: 4, kernel_size: 1}
    name: convs.0
  - Conv2d: {out_channels: 4, kernel_size: 1}
    name: convs.2
"""

MISTAKES = [
    (GAP, "(7, 11)", "layer 1 'convs.2' (Conv2d): the nn.ModuleList 'convs' has no module "
     "'convs.1': its modules are numbered from 0 without a gap"),
    (GAP.replace("convs.2", "convs.1.0"), "(7, 11)", "the modules of the nn.ModuleList "
     "'convs' are named at different depths (convs.0, convs.1.0)"),
    (GAP.replace("convs.2", "fuse.1.0"), "(7, 11)", "the nn.ModuleList 'fuse' has no module "
     "'fuse.0'"),
    (GAP.replace("convs.2", "convs").replace("convs.0", "convs.0\n  - ReLU"), "(5, 11)",
     "layer 0 'convs.0' (Conv2d): name 'convs.0' puts it in the nn.ModuleList 'convs', but "
     "layer 2 (line 7) is named 'convs'; rename one"),
    ("  - Conv2d: {out_channels: 4, kernel_size: 1}\n    name: convs\n"
     "  - ReLU:\n    name: convs.0\n", "(7, 11)", "layer 1 'convs.0' (ReLU): name 'convs.0' "
     "puts it in the nn.ModuleList 'convs', but layer 0 (line 4) is named 'convs'; rename "
     "one"),
    ("  - Mul: 2\n    name: scales.0\n", "(5, 11)", "layer 0 'scales.0' (Mul): name "
     "'scales.0' puts it in the nn.ModuleList 'scales', but Mul is a call in forward, not a "
     "module; give it a plain name"),
    ("  - Parameter: {shape: [4, 6, 6]}\n    name: tokens.0\n", "(5, 11)", "but Parameter "
     "is a learnable tensor, not a module"),
    ("  - ReLU:\n    name: acts.0\n    if: false\n", "(6, 5)", "layer 0 'acts.0' (ReLU): if: "
     "a module of the nn.ModuleList 'acts' is always there"),
    ("  - ReLU:\n    name: acts.0\n    from: acts.1\n  - ReLU:\n    name: acts.1\n",
     "(6, 11)", "from: 'acts.1' comes later (layer 1, line 7): move this entry below it"),
    ("  - ReLU:\n    name: acts.0\n  - ReLU:\n    from: acts.1\n", "(7, 11)",
     "from: no earlier entry here is named 'acts.1'"),
    ("  - ReLU:\n    name: acts.0\n  - ReLU:\n    from: acts.0.0\n", "(7, 11)",
     "from: 'acts.0' gives one tensor, not several"),
    ("  - ReLU:\n    name: input.0\n", "(5, 11)", "name 'input' is reserved"),
]


@pytest.mark.parametrize("text, where, message", MISTAKES,
                         ids=[str(i) for i in range(len(MISTAKES))])
def test_mistakes_are_positioned_errors(text, where, message):
    result = netspec.check("netspec: 1\ninput: [4, 6, 6]\nlayers:\n" + text)
    found = [(d.line, d.col, d.message) for d in result.errors]
    assert any(str((line, col)) == where and message in m for line, col, m in found), found


# ------------------------------------------------------------------------- the importer


def test_modules_called_one_by_one_import_by_their_key_paths():
    torch.manual_seed(0)
    layers = import_round_trip(_reference(), (8, 8, 8), torch.randn(2, 8, 8, 8))
    names = [e.get("name") for e in layers]
    for key in ("convs.0", "convs.1", "bns.0", "bns.1", "fuse.0.0", "fuse.0.1", "fuse.1.0",
                "fuse.1.1"):
        assert key in names, names
    # spx[-1] of torch.split(out, 4, 1): the last part, by its number
    cat = next(e for e in layers if "Concat" in e)
    assert cat["from"][-1] == "split.2"
    assert next(e for e in layers if e.get("name") == "fuse.1.1")["from"] == "relu_1"


def test_a_built_model_with_key_path_entries_imports_back_under_the_same_names():
    built = netspec.build(SPEC).eval()
    layers = import_round_trip(built, (8, 8, 8), torch.randn(2, 8, 8, 8))
    written = netspec.check(SPEC)
    keyed = [n.name for n in written.layers if "." in n.name]
    assert [e["name"] for e in layers if "." in e.get("name", "")] == keyed


class SkipsIdentity(nn.Module):
    """HRNet's transition: [t(x) if not isinstance(t, nn.Identity) else x ...]."""

    def __init__(self) -> None:
        super().__init__()
        self.transition = nn.ModuleList([nn.Identity(), nn.Conv2d(3, 5, 3, stride=2,
                                                                  padding=1)])
        self.head = nn.Conv2d(5, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = [t(x) for t in self.transition if not isinstance(t, nn.Identity)]
        return self.head(xs[0])


def test_a_skipped_parameterless_module_is_an_entry_so_the_numbering_has_no_gap():
    torch.manual_seed(0)
    layers = import_round_trip(SkipsIdentity(), (3, 8, 8), torch.randn(2, 3, 8, 8))
    assert layers[0] == {"Identity": None, "name": "transition.0"}
    # the Identity takes the input of the call after it, and nothing takes its output
    assert layers[1]["name"] == "transition.1" and layers[1]["from"] == "input"
    assert layers[2]["name"] == "head" and "from" not in layers[2]  # transition.1's output


def test_timm_s_bottle2neck_imports_weight_for_weight():
    res2net = pytest.importorskip("timm.models.res2net")
    torch.manual_seed(0)
    block = res2net.Bottle2neck(32, 8, base_width=26, scale=4,
                                norm_layer=nn.BatchNorm2d).eval()
    layers = import_round_trip(block, (32, 8, 8), torch.randn(2, 32, 8, 8))
    names = [e.get("name") for e in layers]
    assert [n for n in names if n and n.startswith("convs.")] == ["convs.0", "convs.1",
                                                                   "convs.2"]
    # sp = sp + spx[1] before convs.1: the previous branch's output and the next part
    added = layers[names.index("convs.1") - 1]
    assert "Add" in added and added["from"][1] == "split.1", added


TIED = """\
netspec: 1
name: Tied
input:
  shape: [6]
  dtype: int64
outputs: [heads.0, parts.0.1]
layers:
  - Embedding: {num_embeddings: 10, embedding_dim: 8}
    name: embed.0
  - Linear: {out_features: 4}
    name: heads.1
  - Linear: {out_features: 10, bias: false}
    name: heads.0
    from: embed.0
    tie: {weight: embed.0.weight}
  - name: parts.0
    branches:
      - Linear: {out_features: 3}
      - Linear: {out_features: 5}
    from: heads.1
"""


class Tied(nn.Module):
    """What TIED says: a tie, outputs and a ModuleList of branches, all by key paths."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.ModuleList([nn.Embedding(10, 8)])
        self.heads = nn.ModuleList([nn.Linear(8, 10, bias=False), nn.Linear(8, 4)])
        self.heads[0].weight = self.embed[0].weight
        self.parts = nn.ModuleList([nn.ModuleList([nn.Linear(4, 3), nn.Linear(4, 5)])])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.embed[0](x)
        return self.heads[0](embedded), self.parts[0][1](self.heads[1](embedded))


def test_ties_outputs_and_branches_take_key_paths_too(tmp_path):
    torch.manual_seed(0)
    reference = Tied().eval()
    result = netspec.check(TIED)
    assert result.ok, [d.format() for d in result.errors]
    assert [o.shape for o in result.network.outputs] == [(6, 10), (6, 5)]
    x = torch.randint(0, 10, (2, 6))
    built = netspec.build(result).eval()
    generated = load_generated(result, tmp_path, "Tied")().eval()
    for model in (built, generated):
        assert key_shapes(model) == key_shapes(reference)
        model.load_state_dict(reference.state_dict(), strict=True)
        assert model.heads[0].weight is model.embed[0].weight  # one Parameter, as tied
        with torch.no_grad():
            for mine, theirs in zip(model(x), reference(x), strict=True):
                assert torch.equal(mine, theirs)

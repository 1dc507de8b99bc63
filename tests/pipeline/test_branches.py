"""branches: entries run side by side on one input, as an nn.ModuleList's modules
(DeepLabV3's ASPP: for conv in self.convs: res.append(conv(x)); torch.cat(res, dim=1)).

A hand-written spec against a hand-written torch module of the same structure: the same
state_dict keys and shapes, a strict load, equal outputs; its shapes and parameters as
check and summary count them; the generated code; the diagram; every mistake a positioned
error; and the importer writing such a module back as a branches entry."""

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
from netspec.importer.fx import ImportProblem, model_to_spec

SPEC = """\
netspec: 1
name: ASPPNet
input: [8, 12, 12]
blocks:
  ASPPConv:
    params: {out: required, dilation: 1}
    layers:
      - Conv2d: {out_channels: out, kernel_size: 3, padding: dilation, dilation: dilation,
                 bias: false}
      - BatchNorm2d
      - ReLU
layers:
  - name: convs
    branches:
      - layers:
          - Conv2d: {out_channels: 4, kernel_size: 1, bias: false}
          - BatchNorm2d
          - ReLU
      - ASPPConv: {out: 4, dilation: 2}
      - ASPPConv: {out: 4, dilation: 3}
      - repeat: 2
        Conv2d: {out_channels: 6, kernel_size: 1}
      - Tanh
  - Concat: {dim: 1}
    from: convs
    name: cat
  - name: project
    Conv2d: {out_channels: 4, kernel_size: 1}
  - Add:
    from: [convs.1, project]
    name: residual
"""


def _conv_bn_relu(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Sequential:
    pad = dilation if k == 3 else 0
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class ASPPNet(nn.Module):
    """What SPEC says, written as torchvision writes its ASPP."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([
            _conv_bn_relu(8, 4, 1), _conv_bn_relu(8, 4, 3, 2), _conv_bn_relu(8, 4, 3, 3),
            nn.Sequential(nn.Conv2d(8, 6, 1), nn.Conv2d(6, 6, 1)), nn.Tanh()])
        self.project = nn.Conv2d(26, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = [conv(x) for conv in self.convs]
        return res[1] + self.project(torch.cat(res, dim=1))


def _reference() -> ASPPNet:
    torch.manual_seed(0)
    return with_running_statistics(ASPPNet())


def test_built_is_the_module_list_weight_for_weight():
    reference = _reference()
    built = netspec.build(SPEC).eval()
    assert isinstance(built.convs, nn.ModuleList)
    assert key_shapes(built) == key_shapes(reference)
    built.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 8, 12, 12)
    with torch.no_grad():
        assert torch.equal(built(x), reference(x))


def test_check_gives_each_branch_s_shape_and_counts_parameters():
    reference = _reference()
    result = netspec.check(SPEC)
    assert result.ok, [d.format() for d in result.errors]
    convs = result.layers[0]
    with torch.no_grad():
        outputs = [m(torch.zeros(1, 8, 12, 12)) for m in reference.convs]
    assert [shape for _, shape in convs.outputs] == [tuple(y.shape[1:]) for y in outputs]
    assert [c.qualname for c in convs.children] == [f"convs.{k}" for k in range(5)]
    assert convs.params == sum(p.numel() for p in reference.convs.parameters())
    assert result.total_params == sum(p.numel() for p in reference.parameters())
    assert result.layers[1].sources == [f"convs.{k}" for k in range(5)]


def test_generated_code_is_the_module_list_and_loads_the_same_weights(tmp_path):
    reference = _reference()
    result = netspec.check(SPEC)
    source = generate(result, "class")
    assert "self.convs = nn.ModuleList(" in source
    assert "convs = [module(x) for module in self.convs]" in source
    assert "torch.cat(convs, 1)" in source
    generated = load_generated(result, tmp_path, "ASPPNet")().eval()
    assert key_shapes(generated) == key_shapes(reference)
    weights = build_weights_for(generated, source, reference.state_dict())
    generated.load_state_dict(weights, strict=True)
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        assert torch.equal(generated(x), reference(x))


@pytest.mark.parametrize("style", ["sequential", "ordereddict", "add-module"])
def test_sequential_styles_refuse_branches_by_name(style):
    with pytest.raises(StyleError, match=r"'convs' runs its 5 branches side by side"):
        generate(netspec.check(SPEC), style)


def test_summary_and_render_count_the_branches():
    reference = _reference()
    result = netspec.check(SPEC)
    rows = {r.qualname: r for r in summarize(result).rows}
    assert rows["convs"].params == sum(p.numel() for p in reference.convs.parameters())
    for k, branch in enumerate(reference.convs):
        assert rows[f"convs.{k}"].params == sum(p.numel() for p in branch.parameters())
    dot = to_dot(result)
    assert "branches" in dot and "convs" in dot
    # each output's edge comes from its own branch: five labelled edges into the Concat
    for k in range(5):
        assert f" {k}: " in dot


def test_outputs_may_name_the_branches():
    spec = """\
netspec: 1
input: [4, 6, 6]
outputs: [heads.0, heads.1]
layers:
  - name: heads
    branches:
      - Conv2d: {out_channels: 2, kernel_size: 1}
      - Conv2d: {out_channels: 3, kernel_size: 3, padding: 1}
"""
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    assert [o.shape for o in result.network.outputs] == [(2, 6, 6), (3, 6, 6)]
    built = netspec.build(result).eval()
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        first, second = built(x)
        assert torch.equal(first, built.heads[0](x))
        assert torch.equal(second, built.heads[1](x))


BRANCHES = """\
netspec: 1
input: [8, 12, 12]
layers:
  - name: convs
    branches:
      - Conv2d: {out_channels: 4, kernel_size: 1}
      - Conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
"""

MISTAKES = [
    ("  - name: convs\n    branches: []\n  - ReLU\n", "(5, 15)",
     "layer 0 'convs': branches must have at least 1 entry"),
    (BRANCHES + "  - Conv2d: {out_channels: 4, kernel_size: 1}\n    from: convs.7\n",
     "(9, 11)", "from: 'convs' has no output '7'; it gives 2: convs.0, convs.1"),
    (BRANCHES + "  - ReLU:\n    from: convs\n", "(9, 11)",
     "'convs' gives 2 tensors (4×12×12, 4×12×12); take one by name: from: convs.0 or "
     "convs.1"),
    (BRANCHES, "(4, 5)", "layer 0 'convs': its 2 branches give a tensor each, and the last "
     "entry of a list gives its output, one tensor; join them after it (- Concat: {dim: 1}, "
     "from: convs) or take one (from: convs.0)"),
    (BRANCHES + "        name: second\n  - Concat:\n    from: convs\n", "(8, 9)",
     "name: a branch is named by its position, as an nn.ModuleList's modules are"),
    (BRANCHES + "        from: input\n  - Concat:\n    from: convs\n", "(8, 9)",
     "from: a branch takes the branches entry's input"),
    (BRANCHES + "        if: false\n  - Concat:\n    from: convs\n", "(8, 9)",
     "if: a branch is always there"),
    (BRANCHES + "      - layers: [{Chunk: {chunks: 2, dim: 1}}]\n  - Concat:\n"
     "    from: convs\n", "(8, 9)", "layer convs.2: gives 2 tensors, where a branch gives "
     "one (the output convs.2 of layer 0 'convs')"),
    (BRANCHES + "      - Mul: 0.5\n  - Concat:\n    from: convs\n", "(8, 9)",
     "layer convs.2 (Mul): a branch is a module, as an nn.ModuleList holds, and Mul is a "
     "function called in forward"),
    (BRANCHES + "      - Parameter: {shape: [4, 12, 12]}\n  - Concat:\n    from: convs\n",
     "(8, 9)", "layer convs.2 (Parameter): a branch is a module run on the entry's input, "
     "and Parameter is a tensor"),
    ("netspec: 1\ninput: [5, 12]\nlayers:\n"
     "  - name: convs\n    branches:\n      - MultiheadAttention: {embed_dim: 12, num_heads: "
     "1, batch_first: true}\n      - ReLU\n  - Concat:\n    from: convs\n", "(6, 9)",
     "layer convs.0 (MultiheadAttention): MultiheadAttention takes several inputs, and a "
     "branch takes the entry's one input"),
    (BRANCHES + "    layers: [ReLU]\n  - Concat:\n    from: convs\n", "(4, 5)",
     "an entry is a group of layers in a chain (layers: [...]) or side by side (branches: "
     "[...]), not both"),
    (BRANCHES.replace("    branches:", "    repeat: 2\n    branches:") + "  - Concat:\n"
     "    from: convs\n", "(5, 5)", "layer 0 'convs': repeat: runs copies in a chain, each "
     "on the one tensor the copy before gives, and branches give several"),
    (BRANCHES + "  - Concat:\n    from: convs\n  - name: more\n    layers:\n      - name: inner\n"
     "        branches: [ReLU, Tanh]\n", "(12, 9)",
     "layer more.inner: its 2 branches give a tensor each"),
]


@pytest.mark.parametrize("text, where, message", MISTAKES,
                         ids=[str(i) for i in range(len(MISTAKES))])
def test_mistakes_are_positioned_errors(text, where, message):
    spec = text if text.startswith("netspec") else \
        "netspec: 1\ninput: [8, 12, 12]\nlayers:\n" + text
    result = netspec.check(spec)
    found = [(d.line, d.col, d.message) for d in result.errors]
    assert any(str((line, col)) == where and message in m for line, col, m in found), found


# ------------------------------------------------------------------------- the importer


class SideBySidePooled(nn.Module):
    """DeepLabV3's ASPP in small: convolutions and a pooled branch resized back to its
    input's size, each on the same input, concatenated and projected."""

    class Pooling(nn.Sequential):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            size = x.shape[-2:]
            for mod in self:
                x = mod(x)
            return nn.functional.interpolate(x, size=size, mode="bilinear",
                                             align_corners=False)

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([_conv_bn_relu(3, 4, 1), _conv_bn_relu(3, 4, 3, 2),
                                    self.Pooling(3, 4)])
        self.project = nn.Conv2d(12, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = []
        for conv in self.convs:
            res.append(conv(x))
        return self.project(torch.cat(res, dim=1))


def test_modules_called_side_by_side_import_as_branches():
    torch.manual_seed(0)
    model = SideBySidePooled().eval()
    layers = import_round_trip(model, (3, 10, 10), torch.randn(2, 3, 10, 10))
    convs, cat, project = layers
    assert convs["name"] == "convs" and len(convs["branches"]) == 3
    assert cat == {"Concat": None, "name": "cat", "from": "convs"}
    assert project["name"] == "project"
    # the pooled branch resizes its ReLU's output: the ReLU, without state, gets a name
    pooled = convs["branches"][2]["layers"]
    assert pooled[3] == {"ReLU": None, "name": "relu"}
    assert pooled[4]["from"] == ["relu", "input"]


class OneOfThem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 3, padding=1)])
        self.tail = nn.Conv2d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = (head(x) for head in self.heads)
        return self.tail(b) * a


def test_branches_taken_one_by_one_import_by_name():
    torch.manual_seed(0)
    layers = import_round_trip(OneOfThem().eval(), (3, 6, 6), torch.randn(2, 3, 6, 6))
    assert layers[0]["name"] == "heads" and "branches" in layers[0]
    assert layers[1]["from"] == "heads.1"
    assert layers[2]["from"] == ["tail", "heads.0"]


class OutOfOrder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.convs[1](x), self.convs[0](x)], dim=1)


def test_side_by_side_out_of_order_is_refused_saying_so():
    with pytest.raises(ImportProblem, match=r"calls the modules of 'convs' side by side on "
                       r"one input as 1, 0; a spec's branches are a ModuleList's"):
        model_to_spec(OutOfOrder(), (3, 6, 6))


def test_a_built_model_with_branches_imports_back():
    built = netspec.build(SPEC).eval()
    layers = import_round_trip(built, (8, 12, 12), torch.randn(2, 8, 12, 12))
    assert [e.get("name") for e in layers] == ["convs", "cat", "project", "add"]
    assert len(layers[0]["branches"]) == 5 and layers[1]["from"] == "convs"
    assert layers[3]["from"] == ["convs.1", "project"]


def test_concat_takes_every_part_of_a_split_too():
    spec = """\
netspec: 1
input: [8, 6]
layers:
  - Chunk: {chunks: 4, dim: 1}
    name: quarters
  - Concat: {dim: 2}
    from: quarters
"""
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    assert result.layers[1].sources == [f"quarters.{k}" for k in range(4)]
    assert result.output_shape == (2, 24)
    x = torch.randn(3, 8, 6)
    with torch.no_grad():
        assert torch.equal(netspec.build(result)(x), torch.cat(x.chunk(4, dim=1), dim=2))


ZIPPED = """\
netspec: 1
name: Zipped
input: [3, 8, 8]
layers:
  - Conv2d: {out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
    name: low
  - name: paths
    from: [input, low]
    branches:
      - Conv2d: {out_channels: 2, kernel_size: 3, stride: 2, padding: 1}
      - Conv2d: {out_channels: 2, kernel_size: 1}
  - Add:
    from: [paths.0, paths.1]
"""


class ZippedTorch(nn.Module):
    """HRNet's x[i] = branch(x[i]): each module of the list on a tensor of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.low = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.paths = nn.ModuleList([nn.Conv2d(3, 2, 3, stride=2, padding=1),
                                    nn.Conv2d(4, 2, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = (path(t) for path, t in zip(self.paths, [x, self.low(x)], strict=True))
        return a + b


def test_branches_given_a_tensor_each_run_each_on_its_own(tmp_path):
    """from: [input, low] with two branches: branch k on the k-th, in the build, the
    generated code (zip), the summary and the diagram; the importer writes it back."""
    result = netspec.check(ZIPPED)
    assert result.ok, [d.format() for d in result.errors]
    reference = ZippedTorch().eval()
    built = netspec.build(result).eval()
    built.load_state_dict(reference.state_dict(), strict=True)
    generated = load_generated(result, tmp_path, "Zipped")().eval()
    generated.load_state_dict(reference.state_dict(), strict=True)
    assert "for module, x_k in zip(self.paths, (x, low))]" in generate(result)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = reference(x)
        assert torch.allclose(built(x), expected) and torch.allclose(generated(x), expected)
    rows = {r.qualname: r for r in summarize(result).rows}
    assert rows["paths.1"].params == sum(p.numel() for p in reference.paths[1].parameters())
    dot = to_dot(result)
    assert dot.count("->") >= 5 and "paths" in dot
    layers = import_round_trip(reference, (3, 8, 8), x)
    assert layers[1]["name"] == "paths" and layers[1]["from"] == ["input", "low"]


def test_branches_given_neither_one_tensor_nor_one_each_is_an_error():
    text = ZIPPED.replace("    from: [input, low]\n", "    from: [input, low, low]\n")
    result = netspec.check(text)
    assert [d.message for d in result.errors] == [
        "layer 1 'paths': from: gives 3 tensors to 2 branches; give one (each branch on it) "
        "or one per branch (branch k on the k-th)"]
    assert result.errors[0].line == 8  # the from: line


def test_a_parameter_after_branches_takes_nothing_from_them():
    """A Parameter runs on no input: after a branches entry (CrossViT's class token after
    its patch_embed) it is no whole-parts error."""
    text = ZIPPED.replace("  - Add:\n", "  - Parameter: {shape: [1, 2, 1, 1]}\n"
                          "    name: token\n  - Add:\n")
    result = netspec.check(text)
    assert result.ok, [d.format() for d in result.errors]
    assert netspec.build(result).token.shape == (1, 2, 1, 1)

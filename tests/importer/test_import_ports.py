"""The importer's modules called with several tensors, or returning several: a group with
inputs: (forward(self, x, shortcut), as DLA's trees call their blocks) and outputs: (a tuple,
or a dict as torchvision's IntermediateLayerGetter returns {"low", "high"}, passed whole to
LRASPP's head, which reads input["low"]).  Each round-trips weight for weight; the torchvision
and timm models are in test_import_coverage*.py."""

from __future__ import annotations

import re
from collections import OrderedDict

import pytest
import torch
from function_ops import load_generated
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter

import netspec
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.pipeline.imported import verify


def round_trip(model: nn.Module, shape: tuple, tmp_path=None) -> str:
    """The imported spec's text; its build (and generated code) load the model's
    state_dict strictly and compute its outputs."""
    torch.manual_seed(0)
    model = model.eval()
    imported = model_to_spec(model, shape)
    text = dumps(imported.data)
    result = verify(imported, text)
    net = netspec.build(result).eval()
    net.load_state_dict(model.state_dict(), strict=True)
    models = [net]
    if tmp_path is not None:
        generated = load_generated(result, tmp_path, imported.data["name"])().eval()
        generated.load_state_dict(model.state_dict(), strict=True)
        models.append(generated)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        expected = model(x)
        for ours in models:
            got = ours(x)
            if isinstance(expected, dict):
                assert list(got) == list(expected)
                assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in expected)
            else:
                assert torch.allclose(got, expected, atol=1e-6)
    return text


class Basic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x, shortcut=None):
        if shortcut is None:
            shortcut = x
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + shortcut)


class Tree(nn.Module):
    """DLA's tree: tree1 is given the projected shortcut, tree2 goes without."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Conv2d(4, 4, 1)
        self.tree1 = Basic()
        self.tree2 = Basic()

    def forward(self, x):
        x1 = self.tree1(x, self.project(x))
        return self.tree2(x1)


def test_a_module_called_with_two_tensors_is_a_group_with_inputs(tmp_path):
    text = round_trip(Tree(), (4, 8, 8), tmp_path)
    assert "  - name: tree1\n    from: [input, project]\n    inputs: [x, shortcut]\n" in text
    assert "        from: [conv2, shortcut]\n" in text
    # tree2, called with its input alone, is traced with shortcut = x: one input
    tree2 = text[text.index("  - name: tree2"):]
    assert "inputs:" not in tree2 and "        from: [conv2, input]\n" in tree2


class Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.a(x), self.b(x)


class UsesTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = Heads()
        self.fc = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        out = self.heads(x)
        return self.fc(out[1]) * out[0]


def test_a_module_returning_a_tuple_gives_parts_by_position(tmp_path):
    text = round_trip(UsesTuple(), (4, 6, 6), tmp_path)
    assert "  - name: heads\n    outputs: [a, b]\n" in text
    assert "    from: heads.1\n" in text and "    from: [fc, heads.0]\n" in text


class Head(nn.Module):
    """LRASPP's head: called with the backbone's dict, reads it by key."""

    def __init__(self) -> None:
        super().__init__()
        self.low_classifier = nn.Conv2d(4, 3, 1)
        self.high_classifier = nn.Conv2d(8, 3, 1)

    def forward(self, input):
        low = input["low"]
        high = input["high"]
        return self.low_classifier(low) + self.high_classifier(high)


class Segmenter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        trunk = nn.Sequential(OrderedDict([
            ("0", nn.Conv2d(3, 4, 3, padding=1)), ("1", nn.ReLU()),
            ("2", nn.Conv2d(4, 8, 3, padding=1)), ("3", nn.ReLU())]))
        self.backbone = IntermediateLayerGetter(trunk, {"1": "low", "3": "high"})
        self.classifier = Head()

    def forward(self, x):
        features = self.backbone(x)
        return {"out": self.classifier(features)}


def test_a_dict_of_tensors_passed_whole_is_given_key_by_key(tmp_path):
    text = round_trip(Segmenter(), (3, 8, 8), tmp_path)
    assert "  - name: backbone\n    outputs: {low: '1', high: '3'}\n" in text
    assert ("  - name: classifier\n    from: [backbone.low, backbone.high]\n"
            "    inputs: [low, high]\n") in text


class Joins(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Conv2d(4, 4, 1)

    def forward(self, x, shortcut=None, children=None):
        shortcut = self.project(x)  # what it is given is not used (DLA's trees)
        return x + shortcut + children[0] * children[1]


class ListArgument(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 1)
        self.tree = Joins()

    def forward(self, x):
        a = self.a(x)
        return self.tree(x, a, [a, x])


def test_a_list_of_tensors_gives_an_input_each_and_unused_ones_are_left_out(tmp_path):
    """DLA's trees: tree2(x1, None, children) with children a list of tensors."""
    text = round_trip(ListArgument(), (4, 4, 4), tmp_path)
    assert ("  - name: tree\n    from: [input, a, input]\n"
            "    inputs: [x, children_1, children_2]\n") in text


class DictArgument(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 1)
        self.tree = Joins()

    def forward(self, x):
        return self.tree(x, None, {"0": self.a(x), "1": x})


def test_a_dict_of_tensors_besides_the_input_is_refused_saying_so():
    with pytest.raises(ImportProblem) as info:
        model_to_spec(DictArgument().eval(), (4, 4, 4))
    assert str(info.value) == ("module 'tree' (Joins) is called with 'children', holding "
                               "tensors, besides its input; a spec passes tensors one by one")


class UsesDictWhole(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = Segmenter().backbone

    def forward(self, x):
        features = self.backbone(x)
        return torch.relu(features)


def test_a_dict_of_outputs_used_as_one_tensor_is_refused():
    with pytest.raises(ImportProblem) as info:
        model_to_spec(UsesDictWhole().eval(), (3, 8, 8))
    assert "uses the dict of tensors 'backbone' returns as one tensor; a spec takes them " \
           "one by one" in str(info.value)


class Sls(nn.Module):
    """timm's SelecSLS block: takes [x] or [x, skip], passes [out, skip] on."""

    def __init__(self, first: bool) -> None:
        super().__init__()
        self.first = first
        self.conv = nn.Conv2d(4 if first else 8, 4, 1)

    def forward(self, x):
        if not isinstance(x, list):
            x = [x]
        if self.first:
            out = self.conv(x[0])
            return [out, out]
        return [self.conv(torch.cat([x[0], x[1]], 1)), x[1]]


class SequentialList(nn.Sequential):
    def forward(self, x):
        for module in self:
            x = module(x)
        return x


class Pick(nn.Module):
    def forward(self, x):
        return x[0]


class SlsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.features = SequentialList(Sls(True), Sls(False), Sls(False))
        self.pick = Pick()

    def forward(self, x):
        return self.pick(self.features([self.stem(x)]))


def test_lists_of_tensors_passed_from_module_to_module(tmp_path):
    """features([x]): a list the modules index, each block's [out, skip] the next one's
    input: numbered entries' outputs taken by from: '0.0', the chain's last passed on."""
    text = round_trip(SlsNet(), (3, 6, 6), tmp_path)
    assert "  - name: features\n    outputs: ['2.0', '2.1']\n" in text
    assert "      - outputs: [conv, conv]\n" in text  # the first block uses x[0] only
    assert ("      - from: ['0.0', '0.1']\n        inputs: [x_1, x_2]\n"
            "        outputs: [conv, x_2]\n") in text
    assert "  - name: pick\n    from: features.0\n" in text


class Pairwise(nn.Module):
    """timm's TNT block: (pixel_embed, patch_embed) in, both out."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(4, 4)
        self.outer = nn.Linear(4, 4)

    def forward(self, pixel, patch):
        pixel = pixel + self.inner(pixel)
        return pixel, patch + self.outer(pixel)


class PairChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.blocks = nn.ModuleList([Pairwise() for _ in range(3)])

    def forward(self, x):
        pixel, patch = x, self.stem(x)
        for block in self.blocks:
            pixel, patch = block(pixel, patch)
        return pixel * patch


def test_a_chain_of_modules_passing_two_tensors_on(tmp_path):
    """for blk in self.blocks: pixel, patch = blk(pixel, patch): a group with inputs: and
    outputs:, each entry taking the previous one's two outputs by number."""
    text = round_trip(PairChain(), (5, 4), tmp_path)
    assert ("  - name: blocks\n    from: [input, stem]\n    inputs: [pixel, patch]\n"
            "    outputs: ['2.0', '2.1']\n") in text
    assert "      - from: ['0.0', '0.1']\n        inputs: [pixel, patch]\n" in text
    assert "    from: [blocks.0, blocks.1]\n" in text


class TokenBlock(nn.Module):
    """timm's CaiT class-attention block: the tokens and the class token in, the class
    token out."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x, x_cls):
        u = torch.cat((x_cls, x), dim=1)
        return x_cls + self.proj(u).sum(dim=1, keepdim=True)


class TokenChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 4))
        self.blocks = nn.ModuleList([TokenBlock() for _ in range(3)])

    def forward(self, x):
        x = self.stem(x)
        cls_tokens = self.cls_token.expand(x.shape[0], -1, -1)
        for block in self.blocks:
            cls_tokens = block(x, cls_tokens)
        return torch.cat((cls_tokens, x), dim=1)


def test_a_chain_of_modules_carrying_one_tensor_beside_a_fixed_one(tmp_path):
    """for blk in self.blocks: cls = blk(x, cls): a group with inputs:, each entry taking
    the fixed tensor and the previous entry's output by its number (from: [x, '0'])."""
    text = round_trip(TokenChain(), (5, 4), tmp_path)
    assert "    from: [stem, expand]\n    inputs: [x, x_cls]\n" in text
    assert "      - from: [x, x_cls]\n        inputs: [x, x_cls]\n" in text
    assert "      - from: [x, '0']\n        inputs: [x, x_cls]\n" in text
    assert "      - from: [x, '1']\n        inputs: [x, x_cls]\n" in text


class Restarting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 4))
        self.blocks = nn.ModuleList([TokenBlock() for _ in range(2)])

    def forward(self, x):
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        for block in [self.blocks[1], self.blocks[0]]:
            cls = block(x, cls)
        return cls


def test_a_carried_chain_out_of_order_is_refused_saying_so():
    with pytest.raises(ImportProblem, match=r"calls the modules of 'blocks' as 1 -> 0; a spec "
                       "group calls each of its modules once, in order"):
        model_to_spec(Restarting(), (5, 4))


class Assigning(nn.Module):
    """HRNet's HighResolutionModule: x[i] = branch(x[i]) into the list it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.low = nn.Linear(4, 4)
        self.high = nn.Linear(4, 4)

    def forward(self, x: list):
        x[0] = self.low(x[0])
        x[1] = self.high(x[1])
        return x[0] * x[1]


class AssigningNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.stage = nn.Sequential(Assigning())

    def forward(self, x):
        return self.stage([self.stem(x), x])


def test_a_list_of_tensors_assigned_into_gives_an_input_each(tmp_path):
    """A module given a list (through a Sequential) that assigns into it is traced with the
    list's elements, an input each."""
    text = round_trip(AssigningNet(), (5, 4), tmp_path)
    assert "  - name: stage\n    from: [stem, input]\n    inputs: [input_1, input_2]\n" in text


class OneByOne(nn.Module):
    """Res2Net's convs[i](spx[i]): a ModuleList's modules each on a tensor of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
        self.mix = nn.Linear(2, 2)

    def forward(self, x):
        a, b = torch.split(x, 2, dim=1)
        a = self.convs[0](a)
        return torch.cat([a, self.convs[1](self.mix(a) + b)], dim=1)


def test_a_module_list_called_one_by_one_imports_each_by_its_key_path(tmp_path):
    text = round_trip(OneByOne(), (4,), tmp_path)
    assert "  - Linear: {out_features: 2}\n    name: convs.0\n    from: split.0\n" in text
    assert "    name: convs.1\n" in text


class OneByOneLeavingOneOut(OneByOne):
    """As OneByOne, with a third module (with parameters) its forward never calls."""

    def __init__(self) -> None:
        super().__init__()
        self.convs.append(nn.Linear(2, 2))


def test_a_module_list_called_one_by_one_but_not_whole_is_refused_naming_the_calls():
    with pytest.raises(ImportProblem, match=re.escape(
            "its forward calls the modules of 'convs' one by one on different tensors "
            "(convs.0 on 'getitem', convs.1 on 'add'); a spec calls a ModuleList's modules in "
            "a chain (a group) or side by side on one input (branches:)")):
        model_to_spec(OneByOneLeavingOneOut(), (4,))


class ListBlock(nn.Module):
    """CrossViT's MultiScaleBlock: a list of tensors in, a list out."""

    def __init__(self) -> None:
        super().__init__()
        self.small = nn.Linear(4, 4)
        self.large = nn.Linear(4, 4)

    def forward(self, x: list):
        return [x[0] + self.small(x[1]), x[1] * self.large(x[0])]


class ListChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.blocks = nn.ModuleList([ListBlock() for _ in range(3)])

    def forward(self, x):
        xs = [x, self.stem(x)]
        for block in self.blocks:
            xs = block(xs)
        return xs[0] - xs[1]


def test_a_chain_of_modules_passing_a_list_on_whole(tmp_path):
    """xs = blk(xs): the list's elements are the group's inputs and each block's outputs the
    next one's, by number."""
    text = round_trip(ListChain(), (5, 4), tmp_path)
    assert ("  - name: blocks\n    from: [input, stem]\n    inputs: [x_1, x_2]\n"
            "    outputs: ['2.0', '2.1']\n") in text
    assert "      - from: ['0.0', '0.1']\n        inputs: [x_1, x_2]\n" in text


class LateInput(nn.Module):
    """CrossViT's patch_embed: the second module's input computed after the first call."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.ModuleList([nn.Linear(4, 3), nn.Linear(4, 3)])
        self.pre = nn.Linear(4, 4)
        self.heads = nn.ModuleList([nn.Linear(3, 2), nn.Linear(3, 2)])

    def forward(self, x):
        small = self.embed[0](x)
        large = self.embed[1](self.pre(x))
        outs = [head(t) for t, head in zip([small, large], self.heads, strict=True)]
        return torch.mean(torch.stack(outs), dim=0)


def test_modules_each_on_a_tensor_of_their_own_are_branches_given_one_each(tmp_path):
    """Inputs computed after the first call are computed before the branches entry; the
    mean of a stack before the batch is the mean of a stack after it."""
    text = round_trip(LateInput(), (4,), tmp_path)
    assert "  - name: embed\n    from: [input, pre]\n    branches:\n" in text
    assert "  - name: heads\n    from: [embed.0, embed.1]\n    branches:\n" in text
    assert "  - Stack:\n    name: stack\n    from: heads\n  - Mean: {dim: 1}\n" in text

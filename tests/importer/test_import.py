"""`netspec import` and `base:` specs: torchvision models round-trip weight for weight;
what cannot be expressed is named; hostile targets are refused; edits of a base model."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import netspec
from netspec.cli import main
from netspec.importer.fx import (
    ImportProblem,
    TargetError,
    dumps,
    model_to_spec,
    resolve_target,
)
from netspec.pipeline.imported import import_target, verify

SHAPE = (3, 64, 64)  # every zoo model pools adaptively: small inputs keep the test fast
ZOO = {
    "resnet18": {}, "resnet34": {}, "resnet50": {}, "vgg11": {}, "vgg11_bn": {}, "vgg16": {},
    "vgg16_bn": {}, "alexnet": {}, "googlenet": {"aux_logits": False, "init_weights": False},
    "densenet121": {}, "mobilenet_v2": {}, "squeezenet1_1": {},
}


def round_trip(model: nn.Module, shape=SHAPE, atol=1e-5) -> str:
    """Import -> spec text -> check -> build -> strict load -> the same eval outputs."""
    model.eval()
    imported = model_to_spec(model, shape)
    text = dumps(imported.data, "imported")
    result = verify(imported, text)
    assert result.ok
    built = netspec.build(text)
    ours, theirs = built.state_dict(), model.state_dict()
    assert list(ours) == list(theirs)  # the same keys, in the same order
    built.load_state_dict(theirs, strict=True)
    built.eval()
    assert sum(p.numel() for p in built.parameters()) == result.total_params
    x = torch.randn(2, *shape)
    with torch.no_grad():
        expected, got = model(x), built(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= atol
    return text


@pytest.mark.parametrize("name", list(ZOO))
def test_torchvision_zoo_round_trip(name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(**ZOO[name])
    text = round_trip(model)
    assert "netspec: 1" in text


def test_imported_spec_reads_like_the_zoo():
    text, imported, result = import_target("torchvision:resnet18")
    assert text.startswith("# Imported by `netspec import` from torchvision:resnet18()")
    assert result.ok and result.output_shape == (1000,) and result.total_params == 11_689_512
    assert imported.data["input"] == [3, 224, 224]
    assert "in_channels" not in text and "num_features" not in text  # inferred
    assert "  - Conv2d: {out_channels: 64, kernel_size: 7, stride: 2, padding: 3, bias: false}\n" \
           "    name: conv1\n" in text
    # the shortcut: an Add taking the block's input, the downsample group from: input
    assert "from: [bn2, input]" in text and "from: [bn2, downsample]" in text


# ----------------------------------------------------------------------- custom models


class Block(nn.Module):
    """A residual block written with functional ops, a gate (Mul) and a shared ReLU."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1), nn.Sigmoid())
        self.act = nn.ReLU()

    def forward(self, x):
        y = self.act(self.conv(x))
        y = y * self.gate(y)
        return self.act(x + y)


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.blocks = nn.Sequential(Block(8), Block(8))
        self.left = nn.Conv2d(8, 4, 1)
        self.right = nn.Conv2d(8, 4, 3, padding=1)
        self.head = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = F.relu(self.stem(x), inplace=True)
        x = self.blocks(x)
        x = torch.cat([self.left(x), self.right(x)], dim=1)
        x = F.adaptive_avg_pool2d(x, (4, 4))
        x = x.view(x.size(0), -1)
        return F.dropout(self.head(x), 0.1, self.training)


def test_custom_model_round_trip():
    torch.manual_seed(0)
    text = round_trip(Custom(), (3, 12, 12))
    assert "Mul:" in text and "Concat:" in text and "AdaptiveAvgPool2d: {output_size: 4}" in text
    assert "act_1" in text  # the ReLU called twice: a second, parameterless module


class TextNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        out, _ = self.lstm(self.embed(x))
        return self.fc(out)


def test_lstm_output_flows_on():
    model = TextNet().eval()
    imported = model_to_spec(model, (7,))
    imported.data["input"] = {"shape": [7], "dtype": "int64"}
    text = dumps(imported.data)
    built = netspec.build(text)
    built.load_state_dict(model.state_dict(), strict=True)
    built.eval()
    x = torch.randint(0, 50, (2, 7))
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-6)


class Sorts(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.sort(self.conv(x), dim=1).values


class Sums(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 4))
        self.tail = nn.ModuleDict({"odd": _Odd()})

    def forward(self, x):
        return self.tail["odd"](self.inner(x))


class Listed(nn.Module):
    """A ModuleList run in a loop, a ModuleDict by key, a shortcut around both."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)])
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 6), "b": nn.Tanh()})

    def forward(self, x):
        y = x
        for layer in self.layers:
            y = layer(y)
        y = x + y
        return self.heads["b"](self.heads["a"](y))


def test_module_list_and_dict_chains_round_trip():
    text = round_trip(Listed(), (4,))
    assert "name: layers" in text and "name: heads" in text


class _Odd(nn.Module):
    def forward(self, x):
        return x.cumsum(dim=1)  # (x.sum(1) is a Sum since netspec has reductions)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.fc(x))


class RawParameter(nn.Module):
    """A buffer used by forward itself, of values no op makes (a parameter would be a
    Parameter entry: tests/ops/test_op_parameter.py; a buffer of one value a ConstantBuffer:
    tests/importer/test_import_buffers.py)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.arange(4.0))

    def forward(self, x):
        return x * self.scale


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        return y, x


class Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


class Folds(nn.Module):
    def __init__(self):
        super().__init__()
        self.fold = nn.Fold(output_size=2, kernel_size=1)

    def forward(self, x):
        return self.fold(x)


@pytest.mark.parametrize("model, fragments", [
    (Sorts(), ["the model (Sorts)", "torch.sort"]),
    (Sums(), ["module 'tail.odd' (_Odd)", "Tensor.cumsum"]),
    (Shared(), ["module 'fc' (Linear) is called 2 times", "shared weights"]),
    (RawParameter(), ["the model (RawParameter): its buffer 'scale' (4, float32) holds values "
                      "that no netspec op makes"]),
    (TwoOutputs(), ["the model (TwoOutputs)", "its output 'output1' is its input",
                    "outputs name entries"]),
    (Branchy(), ["torch.fx cannot trace", "the model (Branchy)"]),
    (Folds(), ["module 'fold' (Fold)", "torch.nn.Fold is not a netspec layer type"]),
])
def test_what_cannot_be_expressed_is_named(model, fragments):
    with pytest.raises(ImportProblem) as info:
        model_to_spec(model, (4,))
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_module_names_that_cannot_name_entries_are_refused():
    model = nn.Sequential()
    model.add_module("block 1", nn.Linear(4, 4))  # block-1 can: tests/pipeline/test_module_names
    with pytest.raises(ImportProblem, match="module 'block 1' \\(Linear\\): its name 'block 1' "
                       "cannot name a spec entry"):
        model_to_spec(model, (4,))


def test_input_that_does_not_fit_is_reported():
    with pytest.raises(ImportProblem, match="give the model's input shape"):
        import_target("torchvision:alexnet", input_shape=(3, 16, 16))


# ----------------------------------------------------------------------- targets and CLI


@pytest.mark.parametrize("target, fragment", [
    ("os:system", "standard-library"),
    ("subprocess:run", "standard-library"),
    ("builtins:eval", "standard-library"),
    ("__import__", "is not a target"),
    ("torchvision:resnet18; import os", "is not a target"),
    ("torchvision:_utils", "private"),
    ("torchvision:resnet19", "did you mean 'resnet18'"),
    ("no_such_package_xyz:make", "cannot import"),
    ("torch:tensor", "not a Python function or nn.Module class"),
    ("netspec.importer.fx:ImportProblem", "not an nn.Module"),
])
def test_hostile_or_wrong_targets_are_refused(target, fragment):
    with pytest.raises(TargetError, match=fragment.replace("(", r"\(")):
        resolve_target(target)


def test_cli_import_writes_a_checked_spec(tmp_path, capsys):
    out = tmp_path / "r18.yaml"
    assert main(["import", "torchvision:resnet18", "-o", str(out), "--input", "3,32,32",
                 "--kwargs", '{"num_classes": 10}', "--name", "ResNet18"]) == 0
    err = capsys.readouterr().err
    assert "ResNet18, input 3×32×32 -> 10" in err and "netspec check: ok" in err
    result = netspec.check(out)
    assert result.ok and result.output_shape == (10,)
    assert main(["check", "-q", str(out)]) == 0


@pytest.mark.parametrize("argv, status, fragment", [
    (["import", "os:system"], 2, "standard-library"),
    (["import", "__import__"], 2, "is not a target"),
    (["import", "torchvision:resnet18", "--kwargs", "{num_classes: 10}"], 2, "not JSON"),
    (["import", "torchvision:resnet18", "--kwargs", "[10]"], 2, "JSON object"),
    (["import", "torchvision:resnet18", "--kwargs", '{"classes": 10}'], 2, "classes"),
    (["import", "torchvision:resnet18", "--name", "not a name"], 2, "not a Python identifier"),
    # (GoogLeNet with its aux heads imports now: test_import_outputs, the coverage test)
    (["import", "torchvision:alexnet", "--input", "3,16,16"], 1,
     "does not check at input 3×16×16"),
    # (MaxViT imports now: tests/importer/test_import_computed_sizes.py, the coverage test)
    (["import", "torchvision.models.video:mvit_v2_s", "--input", "3,16,224,224"], 1,
     "passing more than its tensor to the next module (its sizes)"),
])
def test_cli_import_exit_codes(argv, status, fragment, capsys):
    assert main(argv) == status
    assert fragment in capsys.readouterr().err


# ----------------------------------------------------------------------- base: and edits:

VGG = "netspec: 1\nbase: torchvision:vgg16\ninput: [3, 32, 32]\n"


@pytest.fixture(scope="module")
def vgg16_weights():
    torch.manual_seed(0)
    return torchvision.models.vgg16().state_dict()


def _same_as(spec: str, reference: nn.Module) -> nn.Module:
    """The spec builds the edited torchvision model: same keys, its weights load strictly."""
    model = netspec.build(spec)
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)
    return model


def test_base_replace_like_the_tutorial(vgg16_weights):
    spec = VGG + "edits:\n  - replace: classifier.6\n    with: {Linear: {out_features: 10}}\n"
    result = netspec.check(spec)
    assert result.ok and result.output_shape == (10,) and result.network.name == "VGG"
    reference = torchvision.models.vgg16()
    reference.classifier[6] = nn.Linear(4096, 10)
    _same_as(spec, reference)
    # pretrained weights minus the replaced layer load with strict=False, cleanly
    model = netspec.build(spec)
    kept = {k: v for k, v in vgg16_weights.items() if not k.startswith("classifier.6.")}
    missing, unexpected = model.load_state_dict(kept, strict=False)
    assert sorted(missing) == ["classifier.6.bias", "classifier.6.weight"] and not unexpected


def test_base_append_and_delete():
    spec = VGG + ("edits:\n"
                  "  - delete: classifier.2\n"
                  "  - append: classifier\n"
                  "    with: {Linear: {out_features: 10}, name: add_linear}\n"
                  "  - insert_before: features.0\n"
                  "    with: Identity\n")
    reference = torchvision.models.vgg16()
    del reference.classifier[2]  # nn.Sequential renumbers what follows, as a spec does
    reference.classifier.add_module("add_linear", nn.Linear(1000, 10))
    reference.features.insert(0, nn.Identity())
    model = _same_as(spec, reference)
    assert "classifier.add_linear.weight" in model.state_dict()


def test_base_with_kwargs_and_a_name():
    spec = ("netspec: 1\nname: Small\nbase: torchvision:resnet18\nbase_kwargs: {num_classes: 7}\n"
            "input: [3, 32, 32]\nedits:\n  - replace: layer4.0.downsample\n"
            "    with: {layers: [{Conv2d: {out_channels: 512, kernel_size: 1, stride: 2}}]}\n")
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    assert result.network.name == "Small" and result.output_shape == (7,)
    model = netspec.build(spec)
    assert "layer4.0.downsample.0.bias" in model.state_dict()
    assert "layer4.0.downsample.1.weight" not in model.state_dict()


def one_error(spec: str, line: int, col: int, fragment: str):
    result = netspec.check(spec)
    errors = result.errors
    assert len(errors) == 1, [d.format() for d in errors]
    assert (errors[0].line, errors[0].col) == (line, col), errors[0].format()
    assert fragment in errors[0].message, errors[0].format()


@pytest.mark.parametrize("edits, line, col, fragment", [
    ("  - replace: classifer.6\n    with: ReLU\n", 5, 14,
     "no module 'classifer' in torchvision:vgg16 (did you mean 'classifier'?)"),
    ("  - delete: classifier.9\n", 5, 13,
     "no module 'classifier.9' in torchvision:vgg16; classifier has 0–6"),
    ("  - delete: classifier.6.weight\n", 5, 13, "'classifier.6' is a layer (Linear)"),
    ("  - append: classifier.6\n    with: ReLU\n", 5, 13, "is a layer, not a group"),
    ("  - replace: classifier.6\n", 5, 5, "replace needs with:"),
    ("  - remove: classifier.6\n", 5, 5, "unknown key 'remove' in an edit"),
    ("  - replace: classifier.6\n    delete: classifier.5\n    with: ReLU\n", 5, 5,
     "exactly one of"),
    # the replacement's in_features no longer fits: checked, pointed at inside the edit
    ("  - replace: classifier.6\n    with: {Linear: {in_features: 1000, out_features: 10}}\n",
     6, 34, "layer classifier.6 (Linear): in_features 1000 does not match the 4096 features"),
    # downstream of an edit, errors in the base's own layers point at base:
    ("  - insert_after: features.0\n    with: Flatten\n", 2, 7,
     "layer features.3 (Conv2d): expects a C×H×W sample (batch excluded), got 65536"),
])
def test_edit_errors_are_positioned(edits, line, col, fragment):
    spec = VGG + "edits:\n" + edits
    one_error(spec, line, col, fragment)


def test_base_spec_problems_are_positioned():
    one_error("netspec: 1\ninput: [3, 8, 8]\nlayers:\n  - ReLU\nedits:\n  - delete: 0\n", 5, 1,
              "edits: change a base model")
    one_error(VGG + "layers:\n  - ReLU\n", 4, 1, "takes its layers from the base model")
    one_error("netspec: 1\nbase: os:system\ninput: [3, 8, 8]\n", 2, 7,
              "is not a torchvision model, and a spec may call other code only from modules "
              "you trust")  # tests/importer/test_trust.py: torchvision builders unless trusted
    one_error("netspec: 1\nbase: torchvision:vgg17\ninput: [3, 8, 8]\n", 2, 7,
              "did you mean 'vgg19'")
    one_error("netspec: 1\nbase: torchvision:vgg11\nbase_kwargs: [1]\ninput: [3, 8, 8]\n", 3, 14,
              "base_kwargs must be a mapping")


def test_hostile_base_never_runs(monkeypatch):
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    result = netspec.check("netspec: 1\nbase: os:system\ninput: [3]\n")
    assert not result.ok and not called

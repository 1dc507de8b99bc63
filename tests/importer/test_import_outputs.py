"""The importer's outputs (netspec/importer/outputs.py): a model returning several tensors
(a dict, a namedtuple, a tuple) imports with `outputs:`; aux heads run only in training
become training_only outputs (GoogLeNet, Inception v3: namedtuple in training, the logits
in eval); a child returning {"out": x} (torchvision's IntermediateLayerGetter) is taken by
its key.  Small models here; the torchvision ones are in test_import_coverage.py."""

from __future__ import annotations

from collections import namedtuple

import pytest
import torch
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter

import netspec
from netspec.importer.fx import ImportProblem, dumps, model_to_spec
from netspec.pipeline.imported import verify

AuxOutputs = namedtuple("AuxOutputs", ["logits", "aux_logits"])


class Aux(nn.Module):
    """An aux head called in training only, returned beside the logits, as GoogLeNet's."""

    def __init__(self, eval_differs: bool = False):
        super().__init__()
        self.eval_differs = eval_differs
        self.conv = nn.Conv2d(3, 4, 3)
        self.aux = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x):
        x = self.conv(x)
        aux = self.aux(x) if self.training else None
        if self.eval_differs and not self.training:
            x = torch.relu(x)
        x = self.head(x)
        return AuxOutputs(x, aux) if self.training else x


def built(model: nn.Module, shape: tuple) -> tuple[nn.Module, str]:
    imported = model_to_spec(model.eval(), shape)
    text = dumps(imported.data)
    net = netspec.build(verify(imported, text))
    net.load_state_dict(model.state_dict(), strict=True)
    return net, text


def test_an_aux_head_run_in_training_is_a_training_only_output():
    torch.manual_seed(0)
    model = Aux()
    net, text = built(model, (3, 8, 8))
    assert "returns: namedtuple\noutputs:\n  logits: head\n  aux_logits: {from: aux, " \
           "training_only: true}\n" in text
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(net.eval()(x), model.eval()(x))  # the logits themselves in eval
    ours, theirs = net.train()(x), model.train()(x)
    assert ours._fields == theirs._fields and all(map(torch.equal, ours, theirs))


def test_an_eval_forward_that_is_not_the_training_one_less_its_outputs_is_refused():
    with pytest.raises(ImportProblem, match="in eval computes otherwise"):
        model_to_spec(Aux(eval_differs=True).eval(), (3, 8, 8))


class Segmenter(nn.Module):
    """torchvision's segmentation layout: a backbone returning {"out": features}, a head,
    the logits resized to the input's size, returned as {"out": ...}."""

    def __init__(self):
        super().__init__()
        body = nn.Sequential()
        body.add_module("stem", nn.Conv2d(3, 4, 3, stride=2, padding=1))
        body.add_module("layer", nn.Conv2d(4, 6, 3, stride=2, padding=1))
        self.backbone = IntermediateLayerGetter(body, {"layer": "out"})
        self.classifier = nn.Conv2d(6, 5, 1)

    def forward(self, x):
        size = x.shape[-2:]
        features = self.backbone(x)
        out = self.classifier(features["out"])
        return {"out": nn.functional.interpolate(out, size=size, mode="bilinear",
                                                 align_corners=False)}


def test_a_dict_of_one_tensor_from_a_child_and_a_dict_from_the_model():
    torch.manual_seed(0)
    model = Segmenter().eval()
    net, text = built(model, (3, 16, 16))
    assert "outputs:\n  out: " in text and "returns" not in text
    for size in ((16, 16), (23, 37)):  # sizes read at run time, as the reference reads them
        x = torch.randn(2, 3, *size)
        ours, theirs = net.eval()(x), model(x)
        assert set(ours) == {"out"} and ours["out"].shape == (2, 5, *size)
        assert (ours["out"] - theirs["out"]).abs().max() <= 1e-6


class UsesTheDict(Segmenter):
    def forward(self, x):
        return self.classifier(self.backbone(x))


def test_a_dict_used_as_a_tensor_is_refused():
    with pytest.raises(ImportProblem, match=r"uses the dict 'backbone' returns as a "
                       r"tensor; .* backbone\['out'\]"):
        model_to_spec(UsesTheDict().eval(), (3, 16, 16))


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 3)

    def forward(self, x):
        return self.a(x), self.b(x)


def test_a_tuple_of_outputs():
    torch.manual_seed(0)
    model = Pair()
    net, text = built(model, (4,))
    assert "outputs: [a, b]" in text
    x = torch.randn(3, 4)
    assert all(map(torch.equal, net(x), model(x)))


def test_torchvision_s_fcn_runs_at_any_image_size_as_the_reference():
    """fcn_resnet50 imported at 64×64 (check computes that size) runs at another: its
    F.interpolate(size=input_shape) reads the size when it runs, as torchvision's does."""
    from torchvision.models.segmentation import fcn_resnet50

    torch.manual_seed(0)
    model = fcn_resnet50(weights=None, weights_backbone=None, num_classes=3).eval()
    net, text = built(model, (3, 64, 64))
    assert "outputs:\n  out: " in text
    for size in ((64, 64), (48, 80)):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            ours, theirs = net.eval()(x), model(x)
        assert set(ours) == set(theirs) == {"out"} and ours["out"].shape == (1, 3, *size)
        assert (ours["out"] - theirs["out"]).abs().max() <= 1e-5


def test_a_backbone_returning_two_tensors_gives_both():
    """aux_loss=True: the backbone returns {"aux": layer3, "out": layer4} (in the order it
    fills the dict), a group with outputs: whose parts the classifier and aux head take."""
    from torchvision.models.segmentation import fcn_resnet50

    torch.manual_seed(0)
    model = fcn_resnet50(weights=None, weights_backbone=None, num_classes=3,
                         aux_loss=True).eval()
    net, text = built(model, (3, 64, 64))
    assert "  - name: backbone\n    outputs: {aux: layer3, out: layer4}\n" in text
    assert "    from: backbone.out\n" in text and "    from: backbone.aux\n" in text
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = net.eval()(x), model(x)
    assert list(ours) == list(theirs) == ["out", "aux"]
    assert all((ours[k] - theirs[k]).abs().max() <= 1e-5 for k in theirs)

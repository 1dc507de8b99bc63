"""Subclasses of torch.nn layers import weight for weight: one that overrides nothing is its
layer (torchvision's Conv3DSimple); one with its own forward (timm's BatchNormAct2d,
LayerNorm2d, Linear, GroupNorm1) is its layer where its forward calls the layer's function
with the module's own tensors as the layer does, and the rest of that forward is written in
its place (the activation after the norm: bn1_act).  What differs is refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import stochastic_depth

import netspec
from netspec.importer.fx import ImportProblem, dumps, layer_type_of, model_to_spec
from netspec.importer.subclass import overrides_nothing
from netspec.pipeline.imported import verify


def round_trip(model: nn.Module, shape: tuple[int, ...]) -> str:
    """Import -> check -> build -> strict load (the same keys in the same order) -> the same
    eval outputs at a batch of 2."""
    model.eval()
    imported = model_to_spec(model, shape)
    text = dumps(imported.data)
    assert verify(imported, text).ok
    built = netspec.build(text).eval()
    assert list(built.state_dict()) == list(model.state_dict())
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-6, rtol=0)
    return text


class PlainConv3d(nn.Conv3d):
    """torchvision's Conv3DSimple: nothing of its own but a static method."""

    @staticmethod
    def stride_of(stride):
        return stride, stride, stride


class NormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d, cut down: the norm, then a dropout and an activation."""

    def __init__(self, c, act=None):
        super().__init__(c)
        self.drop = nn.Identity()
        self.act = act if act is not None else nn.SiLU()

    def forward(self, x):
        torch._assert(x.ndim == 4, "4-d")
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, self.momentum, self.eps)
        return self.act(self.drop(x))


class ChannelsFirstNorm(nn.LayerNorm):
    """timm's LayerNorm2d: a LayerNorm over the channels of N×C×H×W."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Net(nn.Module):
    def __init__(self, norm):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = norm
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.head(self.norm(self.conv(x)))


def test_a_subclass_overriding_nothing_is_its_layer():
    assert overrides_nothing(PlainConv3d, nn.Conv3d)
    assert not overrides_nothing(NormAct, nn.BatchNorm2d)
    model = nn.Sequential(PlainConv3d(3, 4, 3, padding=1), nn.ReLU())
    assert layer_type_of(model[0]).name == layer_type_of(nn.Conv3d(3, 4, 3)).name
    text = round_trip(model, (3, 4, 8, 8))
    assert "Conv3d: {out_channels: 4, kernel_size: 3, padding: 1}" in text


def test_torchvision_conv3d_simple_is_conv3d():
    from torchvision.models.video.resnet import Conv3DSimple

    text = round_trip(nn.Sequential(Conv3DSimple(3, 4, 5)), (3, 4, 8, 8))
    assert "Conv3d: {out_channels: 4, kernel_size: 3, padding: 1, bias: false}" in text


def test_norm_with_an_activation_is_the_norm_then_the_activation():
    text = round_trip(Net(NormAct(8)), (3, 8, 8))
    assert "  - BatchNorm2d:\n    name: norm\n  - SiLU:\n    name: norm_act\n" in text
    assert "Identity" not in text  # its dropout slot, nn.Identity, is left out


def test_a_channels_first_layer_norm_is_torchvisions_layer_norm_2d():
    """Its forward traces as torchvision's LayerNorm2d's (permute, layer_norm, permute):
    netspec declares that layer, so it is one entry under the module's name."""
    text = round_trip(Net(ChannelsFirstNorm(8, eps=1e-6)), (3, 8, 8))
    assert "  - LayerNorm2d: {eps: 1.0e-06}\n    name: norm\n" in text


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Sequential(nn.Flatten(), __import__("timm").layers.Linear(12, 5)), (3, 2, 2)),
    (lambda: Net(__import__("timm").layers.BatchNormAct2d(8)), (3, 8, 8)),
    (lambda: Net(__import__("timm").layers.BatchNormAct2d(8, act_layer=nn.GELU)), (3, 8, 8)),
    (lambda: Net(__import__("timm").layers.LayerNorm2d(8)), (3, 8, 8)),
    (lambda: Net(__import__("timm").layers.GroupNorm1(8)), (3, 8, 8)),
])
def test_timm_layer_subclasses_round_trip(make, shape):
    pytest.importorskip("timm")
    torch.manual_seed(0)
    model = make()
    for m in model.modules():  # non-trivial statistics and affine weights
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
    round_trip(model, shape)


class Standardised(nn.Conv2d):
    """nfnet's ScaledStdConv2d, cut down: its weight is changed in forward."""

    def forward(self, x):
        w = (self.weight - self.weight.mean()) / self.weight.std()
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class OtherEps(nn.BatchNorm2d):
    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            False, 0.1, 1e-3)


class WeightedAct(NormAct):
    def __init__(self, c):
        super().__init__(c, nn.PReLU())


@pytest.mark.parametrize("norm, fragments", [
    (Standardised(8, 8, 1), ["module 'norm' (Standardised): its forward uses its own tensors",
                             "not in one call as torch.nn.Conv2d's forward does"]),
    (OtherEps(8), ["module 'norm' (OtherEps): its forward calls torch.nn.functional.batch_norm",
                   "differently from torch.nn.BatchNorm2d's forward"]),
    (WeightedAct(8), ["module 'norm' (WeightedAct): a torch.nn.BatchNorm2d whose child 'act' "
                      "(PReLU) has parameters of its own"]),
])
def test_a_subclass_computing_otherwise_is_refused_by_name(norm, fragments):
    with pytest.raises(ImportProblem) as info:
        model_to_spec(Net(norm).eval(), (3, 8, 8))
    for fragment in fragments:
        assert fragment in str(info.value)


class ActLinear(nn.Linear):
    """An activation before the layer: the layer's entry is not the first of its forward."""

    def forward(self, x):
        return super().forward(F.relu(x))


def test_several_entries_in_place_of_an_indexed_child_is_refused_by_name():
    model = nn.Sequential(nn.Flatten(), ActLinear(12, 8), nn.Linear(8, 4))
    with pytest.raises(ImportProblem, match=r"module '1' \(ActLinear\): its forward is "
                       r"ReLU, Linear; in a spec, an entry without a name is "
                       r"named by its position, and its Linear would be entry 2"):
        model_to_spec(model.eval(), (3, 2, 2))


def test_an_indexed_child_of_one_entry_imports():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), NormAct(8, nn.ReLU()))
    text = round_trip(model, (3, 8, 8))
    assert "  - BatchNorm2d\n  - ReLU:\n    name: op_1_act\n" in text


class StochasticDepth(nn.Module):
    """Another library's copy of torchvision.ops.StochasticDepth: its name, its forward."""

    def __init__(self, p, mode, always_row=False):
        super().__init__()
        self.p, self.mode, self.always_row = p, mode, always_row

    def forward(self, input):
        mode = "row" if self.always_row else self.mode
        return stochastic_depth(input, self.p, mode, self.training)


def test_a_class_whose_forward_is_a_layer_class_s_is_that_layer():
    """timm's LayerNorm2d is torchvision's (which netspec builds) in the same way: its forward,
    traced on its state, is node for node the other's."""
    from torchvision.ops import StochasticDepth as Torchvision

    op = layer_type_of(StochasticDepth(0.2, "batch"))
    assert op is not None and op is layer_type_of(Torchvision(0.2, "batch"))
    assert layer_type_of(StochasticDepth(0.2, "batch", always_row=True)) is None  # not its forward
    model = nn.Sequential(nn.Linear(4, 4), StochasticDepth(0.2, "batch"))
    text = round_trip(model, (4,))
    assert "StochasticDepth: {p: 0.2, mode: batch}" in text

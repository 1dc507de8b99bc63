"""Zoo specs against torchvision: weight for weight, and shape for shape."""

import pytest
import torchvision
from zoo_helpers import ZOO, assert_hook_shapes, assert_torchvision_equivalent

# spec file stem -> (torchvision constructor, input shape)
TORCHVISION = {
    "resnet18": (lambda: torchvision.models.resnet18(), (3, 224, 224)),
    "googlenet": (
        # the default constructor: aux_logits=True (init_weights only changes the init)
        lambda: torchvision.models.googlenet(weights=None, init_weights=False),
        (3, 224, 224),
    ),
    "densenet121": (lambda: torchvision.models.densenet121(), (3, 224, 224)),
    "resnet34": (lambda: torchvision.models.resnet34(), (3, 224, 224)),
    "resnet50": (lambda: torchvision.models.resnet50(), (3, 224, 224)),
    "vgg11": (lambda: torchvision.models.vgg11(), (3, 224, 224)),
    "vgg11_bn": (lambda: torchvision.models.vgg11_bn(), (3, 224, 224)),
    "vgg16": (lambda: torchvision.models.vgg16(), (3, 224, 224)),
    "vgg16_bn": (lambda: torchvision.models.vgg16_bn(), (3, 224, 224)),
    "alexnet": (lambda: torchvision.models.alexnet(), (3, 224, 224)),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), (3, 224, 224)),
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(), (3, 224, 224)),
}


@pytest.mark.parametrize("stem", sorted(TORCHVISION))
def test_matches_torchvision_weight_for_weight(stem):
    make, shape = TORCHVISION[stem]
    model = assert_torchvision_equivalent(ZOO / f"{stem}.yaml", make(), shape)
    assert_hook_shapes(ZOO / f"{stem}.yaml", model)


@pytest.mark.parametrize("spec", sorted(ZOO.glob("*.yaml")), ids=lambda p: p.stem)
def test_static_shapes_match_forward_hooks(spec):
    assert_hook_shapes(spec)


def test_googlenet_returns_what_torchvision_returns():
    """Training: GoogLeNetOutputs(logits, aux_logits2, aux_logits1), the aux heads on; eval:
    the logits alone, the aux heads not run (torchvision's eager_outputs)."""
    import torch

    import netspec

    reference = torchvision.models.googlenet(weights=None, init_weights=False)
    model = netspec.build(ZOO / "googlenet.yaml")
    assert list(model.state_dict()) == list(reference.state_dict())  # the same order too
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    for m in (model, reference):  # training mode, dropout off: deterministic
        m.train()
        for d in m.modules():
            if isinstance(d, torch.nn.Dropout):
                d.eval()
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert type(ours).__name__ == type(theirs).__name__ == "GoogLeNetOutputs"
    assert ours._fields == theirs._fields
    for a, b in zip(ours, theirs, strict=True):
        assert (a - b).abs().max().item() <= 1e-4
    model.eval()
    reference.eval()
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert isinstance(ours, torch.Tensor) and (ours - theirs).abs().max().item() <= 1e-5

"""Zoo specs against torchvision: weight for weight, and shape for shape."""

import pytest
import torchvision
from zoo_helpers import ZOO, assert_hook_shapes, assert_torchvision_equivalent

# spec file stem -> (torchvision constructor, input shape)
TORCHVISION = {
    "resnet18": (lambda: torchvision.models.resnet18(), (3, 224, 224)),
    "googlenet": (
        lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False),
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

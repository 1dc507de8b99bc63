"""Zoo specs against torchvision: weight for weight, and shape for shape."""

import pytest
import torchvision
from zoo_helpers import ZOO, assert_hook_shapes, assert_torchvision_equivalent

# spec file stem -> (torchvision constructor, input shape)
TORCHVISION = {
    "resnet18": (lambda: torchvision.models.resnet18(), (3, 224, 224)),
}


@pytest.mark.parametrize("stem", sorted(TORCHVISION))
def test_matches_torchvision_weight_for_weight(stem):
    make, shape = TORCHVISION[stem]
    model = assert_torchvision_equivalent(ZOO / f"{stem}.yaml", make(), shape)
    assert_hook_shapes(ZOO / f"{stem}.yaml", model)


@pytest.mark.parametrize("spec", sorted(ZOO.glob("*.yaml")), ids=lambda p: p.stem)
def test_static_shapes_match_forward_hooks(spec):
    assert_hook_shapes(spec)

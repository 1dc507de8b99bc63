"""The tutorial's "change VGG-16" step, spelled as Python spells it: `classifier[6] =
nn.Linear(4096, 10)` is `replace: classifier[6]` (issue 13, point 6)."""

from __future__ import annotations

import pytest

import netspec

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
nn = torch.nn

VGG = "netspec: 1\nbase: torchvision:vgg16\ninput: [3, 32, 32]\nedits:\n"


def _edited(edit: str) -> netspec.CheckResult:
    return netspec.check(VGG + edit)


@pytest.mark.parametrize("written", ["classifier[6]", "classifier.6", "classifier[-1]",
                                     "classifier[ 6 ]"])
def test_replace_the_last_linear_as_python_indexes_it(written):
    result = _edited(f"  - replace: {written}\n    with: {{Linear: [4096, 10]}}\n")
    assert result.ok, [d.format() for d in result.errors]
    assert result.output_shape == (10,)
    assert [n.qualname for n in result.layers[-1].children][-1] == "classifier.6"


def test_the_replaced_model_is_the_tutorial_s():
    model = netspec.build(VGG + "  - replace: classifier[6]\n    with: {Linear: [4096, 10]}\n")
    reference = torchvision.models.vgg16()
    reference.classifier[6] = nn.Linear(4096, 10)  # the tutorial's line
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)  # same keys and shapes


def test_indexes_and_names_mix_in_every_edit():
    spec = VGG + ("  - delete: features[0]\n  - insert_before: classifier[0]\n"
                  "    with: Identity\n")
    result = netspec.check(spec)
    groups = {n.name: [c.type for c in n.children] for n in result.layers if n.children}
    reference = torchvision.models.vgg16()
    del reference.features[0]  # nn.Sequential renumbers what follows, as a spec does
    reference.classifier.insert(0, nn.Identity())
    assert groups["features"] == [type(m).__name__ for m in reference.features]
    assert groups["classifier"] == [type(m).__name__ for m in reference.classifier]


def test_an_index_out_of_range_names_what_is_there():
    (error,) = _edited("  - replace: classifier[7]\n    with: ReLU\n").errors
    assert error.message.startswith("index 7 is out of range: classifier has 7 modules (")


def test_a_path_that_is_neither_spelling_is_explained():
    (error,) = _edited("  - replace: classifier[six]\n    with: ReLU\n").errors
    assert "is not a module path: write it as in state_dict keys (classifier.6) or as " \
           "Python indexes it (classifier[6])" in error.message

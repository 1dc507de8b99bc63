"""Every example spec checks clean, builds, and agrees with PyTorch layer by layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
IDS = [p.stem for p in SPECS]
BATCH = 2

torch.set_num_threads(2)


def test_the_examples_are_there():
    names = {p.stem for p in SPECS}
    assert {"tutorial_cifar10", "lenet5", "alexnet", "vgg16", "text_lstm", "audio_conv1d",
            "tiny_transformer", "autoencoder"} <= names


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_checks_clean(spec: Path):
    result = netspec.check(spec)
    assert result.ok, "\n".join(d.format() for d in result.diagnostics)
    assert result.diagnostics == [], "\n".join(d.format() for d in result.diagnostics)
    assert all(r.output_shape is not None and r.params is not None for r in result.layers)


def test_build_takes_a_check_result_without_checking_again(monkeypatch):
    """export, eval/predict, the trainer and `netspec build` check once and build that."""
    import sys

    build_module = sys.modules["netspec.emit.build"]  # netspec.build is the function

    path = ROOT / "specs" / "zoo" / "resnet18.yaml"
    result = netspec.check(path, (3, 64, 64))
    monkeypatch.setattr(build_module, "check", lambda *a: pytest.fail("checked again"))
    torch.manual_seed(0)
    model = netspec.build(result)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)
    assert sum(p.numel() for p in model.parameters()) == result.total_params
    with pytest.raises(ValueError, match="the input it was checked at"):
        netspec.build(result, (3, 32, 32))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_builds_and_agrees_with_torch(spec: Path):
    result = netspec.check(spec)
    model = netspec.build(spec)
    assert isinstance(model, torch.nn.Sequential)
    assert [name for name, _ in model.named_children()] == [r.name for r in result.layers]

    seen: dict[str, tuple[int, ...]] = {}

    def hook(name):
        def record(module, args, output):
            assert isinstance(output, torch.Tensor), f"{name} returned {type(output)}"
            seen[name] = tuple(output.shape)
        return record

    for name, child in model.named_children():
        child.register_forward_hook(hook(name))

    net = result.network
    x = torch.zeros((BATCH, *net.input_shape), dtype=getattr(torch, net.input_dtype))
    model.eval()
    with torch.no_grad():
        y = model(x)

    assert tuple(y.shape) == (BATCH, *result.output_shape)
    for r in result.layers:
        assert seen[r.name] == (BATCH, *r.output_shape), f"layer {r.index} {r.name} ({r.type})"
        child = getattr(model, r.name)
        assert sum(p.numel() for p in child.parameters()) == r.params, f"layer {r.index} {r.name}"
    assert sum(p.numel() for p in model.parameters()) == result.total_params


@pytest.mark.parametrize("arch", ["alexnet", "vgg16"])
def test_torchvision_parameter_counts(arch: str):
    import torchvision

    reference = getattr(torchvision.models, arch)(weights=None)
    expected = sum(p.numel() for p in reference.parameters())
    result = netspec.check(ROOT / "specs" / f"{arch}.yaml")
    assert result.total_params == expected
    # the same modules in the same order, flattened out of features/avgpool/classifier
    ours = [type(m).__name__ for m in netspec.build(ROOT / "specs" / f"{arch}.yaml")]
    theirs = [type(m).__name__ for m in reference.modules()
              if not list(m.children())]
    theirs.insert(theirs.index("AdaptiveAvgPool2d") + 1, "Flatten")  # torch.flatten in forward
    assert ours == theirs


@pytest.mark.parametrize("arch", ["alexnet", "vgg16"])
def test_default_names(arch: str):
    result = netspec.check(ROOT / "specs" / f"{arch}.yaml")
    assert [r.name for r in result.layers] == [str(i) for i in range(len(result.layers))]

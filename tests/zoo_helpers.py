"""Shared checks for zoo specs: weight-for-weight equivalence with torchvision, and
static shapes against forward hooks on every named module."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import netspec

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "specs" / "zoo"


def assert_torchvision_equivalent(spec: Path, reference: torch.nn.Module, shape, atol=1e-5):
    """Same state_dict keys and shapes, same parameter count, strict load, same outputs."""
    torch.manual_seed(0)
    model = netspec.build(spec)
    ours, theirs = model.state_dict(), reference.state_dict()
    assert set(ours) == set(theirs), (
        f"only in netspec: {sorted(set(ours) - set(theirs))[:8]}; "
        f"only in torchvision: {sorted(set(theirs) - set(ours))[:8]}"
    )
    for key in ours:
        assert ours[key].shape == theirs[key].shape, key
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters())
    assert count == netspec.check(spec).total_params
    model.load_state_dict(theirs, strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        difference = (model(x) - reference(x)).abs().max().item()
    assert difference <= atol, difference
    return model


def assert_hook_shapes(spec: Path, model: torch.nn.Module | None = None, batch: int = 2):
    """Every module netspec names has the output shape netspec inferred for it."""
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    model = model or netspec.build(spec)
    expected = {}
    for top in result.layers:
        for _, r in top.walk():
            if r.kind != "merge" and r.output_shape is not None:
                expected[r.qualname or r.name] = (batch, *r.output_shape)
    seen = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
        for name, module in model.named_modules()
        if name in expected
    ]
    xs = [torch.zeros((batch, *i.shape), dtype=getattr(torch, i.dtype))
          for i in result.network.all_inputs]  # every input, by position
    model.eval()
    with torch.no_grad():
        model(*xs)
    for h in hooks:
        h.remove()
    checked = 0
    for name, output in seen.items():
        if isinstance(output, torch.Tensor):
            assert tuple(output.shape) == expected[name], (name, output.shape, expected[name])
            checked += 1
    assert checked >= len(result.layers) // 2, f"only {checked} modules were checked"
    return checked


def flop_counter_macs(model: torch.nn.Module, shape) -> float:
    """FlopCounterMode's count of one eval forward pass of one sample, halved: what netspec
    summary calls MACs.  On the meta device (shapes only) when the model is there."""
    device = next(model.parameters()).device
    x = torch.zeros((1, *shape), device=device)
    model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        with FlopCounterMode(display=False) as counter:
            model(x)
    return counter.get_total_flops() / 2


def with_running_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """The model in eval mode, its BatchNorms' running statistics drawn away from their
    initial 0 and 1, so that a load leaving them out or misplacing them shows."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model.eval()


def key_shapes(model: torch.nn.Module) -> list[tuple[str, tuple]]:
    """The state_dict's keys in order, each with its tensor's shape."""
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]

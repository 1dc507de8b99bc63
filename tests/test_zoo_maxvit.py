"""specs/zoo/maxvit_t.yaml against torchvision.models.maxvit_t() (default arguments, random
weights), weight for weight: keys in order, strict load, outputs, stochastic depth module
for module, parameters and MACs."""

from __future__ import annotations

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode
from zoo_helpers import ZOO

import netspec
from netspec.emit.summary import summarize

SPEC = ZOO / "maxvit_t.yaml"


def test_weight_for_weight():
    """The same state_dict keys in torchvision's order (the relative position index buffers
    among them) and shapes, 30,919,624 parameters, a strict load, the same logits."""
    torch.manual_seed(0)
    reference = torchvision.models.maxvit_t().eval()
    model = netspec.build(SPEC).eval()
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape and ours[k].dtype == theirs[k].dtype
               for k in ours)
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters()) == 30_919_624
    assert count == netspec.check(SPEC).total_params
    model.load_state_dict(theirs, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = reference(x)
        assert (model(x) - expected).abs().max().item() <= 1e-5
    assert expected.abs().max().item() > 0.1  # the comparison means something


def test_stochastic_depth_as_torchvision_s():
    """Training drops what torchvision drops: each layer's p (np.linspace(0, 0.2, 11)) and
    mode on its MBConv and both attentions; torchvision calls one module twice in each
    attention, the spec has a second of the same p (mlp_stochastic_dropout)."""
    ours = {n: repr(m) for n, m in netspec.build(SPEC).named_modules()
            if type(m).__name__ == "StochasticDepth"}
    theirs = {n: repr(m) for n, m in torchvision.models.maxvit_t().named_modules()
              if type(m).__name__ == "StochasticDepth"}
    # torchvision's first MBConv has an Identity for p 0, the spec StochasticDepth(p=0.0)
    assert ours.pop("blocks.0.layers.0.layers.MBconv.stochastic_depth") == \
        "StochasticDepth(p=0.0, mode=row)"
    again = {n.replace("mlp_stochastic_dropout", "stochastic_dropout"): r
             for n, r in ours.items() if "mlp_stochastic_dropout" in n}
    assert len(again) == 22 and all(theirs[n] == r for n, r in again.items())
    assert {n: r for n, r in ours.items() if "mlp_" not in n} == theirs


def test_summary_macs_are_flop_counter_s():
    """Both models on the meta device (shapes only): einsum and Matmul count alike."""
    reference = torchvision.models.maxvit_t().to("meta")
    with torch.device("meta"):
        model = netspec.build(SPEC, ignore_memory=True)
    counts = []
    for m in (model, reference):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            m.eval()(torch.zeros(1, 3, 224, 224, device="meta"))
        counts.append(counter.get_total_flops() // 2)
    assert summarize(SPEC).macs == counts[0] == counts[1]

"""specs/zoo/pvt_v2_b0.yaml against timm's pvt_v2_b0 (pretrained=False: architecture only),
weight for weight: keys, strict load, outputs at two image sizes, every shared module's
output, parameters and MACs."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from zoo_helpers import ZOO

import netspec
from netspec.emit.summary import summarize

timm = pytest.importorskip("timm")

SPEC = ZOO / "pvt_v2_b0.yaml"
# the spec's order inside an attention: keys and values (from the reduced map) before the
# queries, as from: refers to earlier entries only; timm registers q, kv, proj, sr, norm
ATTENTION_ORDER = ["sr", "norm", "kv", "q", "proj"]


def spec_order(keys: list[str]) -> list[str]:
    """timm's keys with each attention's children in the spec's order."""
    def child(key: str) -> tuple[str, str]:
        head, _, rest = key.partition(".attn.")
        return head, rest.partition(".")[0]

    out: list[str] = []
    for key in keys:
        head, name = child(key)
        if ".attn." in key and out and ".attn." in out[-1] and child(out[-1])[0] == head:
            at = len(out)
            while at and ".attn." in out[at - 1] and child(out[at - 1])[0] == head and \
                    ATTENTION_ORDER.index(child(out[at - 1])[1]) > ATTENTION_ORDER.index(name):
                at -= 1
            out.insert(at, key)
        else:
            out.append(key)
    return out


def test_weight_for_weight_module_for_module_at_any_image_size():
    """The same keys (each attention's children in the spec's order), shapes and count, a
    strict load, and then forward hooks on every module both models name: the same output
    (the logits among them), in the same shape where timm's is not tokens (N×C) that the
    spec keeps on their H×W×C grid; and the same logits at another image size, as every
    size is read from the tensor when the model runs."""
    torch.manual_seed(0)
    reference = timm.create_model("pvt_v2_b0", pretrained=False).eval()
    model = netspec.build(SPEC).eval()
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == spec_order(list(theirs))
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters()) == 3_666_760
    assert count == netspec.check(SPEC).total_params
    model.load_state_dict(theirs, strict=True)

    ours, theirs = {}, {}
    names = {n for n, _ in model.named_modules()} & {n for n, _ in reference.named_modules()}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n, d=d: d.__setitem__(n, o))
             for net, d in ((model, ours), (reference, theirs))
             for n, m in net.named_modules() if n in names and n]
    with torch.no_grad():
        model(x := torch.randn(1, 3, 224, 224)), reference(x)
    for h in hooks:
        h.remove()
    same_shape = 0
    for name, output in theirs.items():
        same_shape += ours[name].shape == output.shape
        assert ours[name].numel() == output.numel(), name
        assert (ours[name].reshape(output.shape) - output).abs().max() <= 1e-5, name
    assert "head" in theirs and len(theirs) > 100 and same_shape > 40, (len(theirs), same_shape)
    with torch.no_grad():
        x = torch.randn(2, 3, 96, 64)
        assert (model(x) - reference(x)).abs().max().item() <= 1e-5


def test_summary_macs_are_flop_counter_s():
    """Both models on the meta device (shapes only), where FlopCounterMode counts the
    attention too."""
    reference = timm.create_model("pvt_v2_b0", pretrained=False).to("meta")
    with torch.device("meta"):
        model = netspec.build(SPEC, ignore_memory=True)
    counts = []
    for m in (model, reference):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            m.eval()(torch.zeros(1, 3, 224, 224, device="meta"))
        counts.append(counter.get_total_flops() // 2)
    assert summarize(SPEC).macs == counts[0] == counts[1] == 566_065_664

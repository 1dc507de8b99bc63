"""MultiheadAttention, three ports (key defaults to the query, value to the key) and a tuple
output of which attn_output flows on (netspec/ops/attention.py): its rule against torch,
params, MACs, and every command on it."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from conftest import examples
from generated import build_weights_for
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize

SELF = """\
netspec: 1
name: SelfAttention
input: [10, 16]
layers:
  - MultiheadAttention: {num_heads: 4, batch_first: true}
    name: attn
  - Linear: {out_features: 8}
"""

CROSS = """\
netspec: 1
name: CrossAttention
input: [10, 16]
layers:
  - Linear: {out_features: 12}
    name: kv
  - Linear: {out_features: 16}
    name: q
    from: input
  - MultiheadAttention: {num_heads: 4, batch_first: true, kdim: 12, vdim: 12}
    from: [q, kv]
    name: attn
"""


def _torch_verdict(args, q, k, v):
    try:
        module = nn.MultiheadAttention(**args)
        out = module(torch.zeros(2, *q), torch.zeros(2, *k), torch.zeros(2, *v))[0]
    except (AssertionError, RuntimeError, ValueError):
        return None
    return tuple(out.shape[1:])


def _netspec_verdict(args, q, k, v):
    from netspec.ops import REGISTRY
    from netspec.ops.declare import Args, ShapeError

    lt = REGISTRY["MultiheadAttention"]
    given = {key: val for key, val in args.items() if key != "embed_dim"}
    a = Args.filled(lt, given, ["q", "k", "v"])
    a.values["embed_dim"] = q[-1]
    try:
        return tuple(lt.rule(a, [q, k, v])), lt.params(a, [q, k, v])
    except ShapeError:
        return None, None


@settings(max_examples=examples(150), deadline=None)
@given(heads=st.integers(1, 4), per_head=st.integers(1, 4), lq=st.integers(1, 5),
       lk=st.integers(1, 5), lv=st.integers(1, 5), kdim=st.none() | st.integers(1, 9),
       vdim=st.none() | st.integers(1, 9), kf=st.integers(1, 9), vf=st.integers(1, 9),
       same=st.booleans(), batch_first=st.booleans(), off=st.integers(0, 2),
       bias_kv=st.booleans(), zero_attn=st.booleans())
def test_attention_agrees_with_torch(heads, per_head, lq, lk, lv, kdim, vdim, kf, vf, same,
                                     batch_first, off, bias_kv, zero_attn):
    """Drawn sizes, valid and invalid: netspec's verdict and output shape equal torch's on
    zeros with a batch of 2, and its parameter count torch's."""
    e = heads * per_head + off
    if same:  # mostly valid draws: key/value sizes as the module expects
        kf, vf, lv = kdim or e, vdim or e, lk
    args = {"embed_dim": e, "num_heads": heads, "kdim": kdim, "vdim": vdim,
            "batch_first": batch_first, "add_bias_kv": bias_kv, "add_zero_attn": zero_attn}
    q, k, v = (lq, e), (lk, kf), (lv, vf)
    ours, params = _netspec_verdict(args, q, k, v)
    theirs = _torch_verdict(args, q, k, v)
    assert ours == theirs, (args, q, k, v, ours, theirs)
    if ours is not None:
        module = nn.MultiheadAttention(**args)
        assert params == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("kdim,vdim,bias_kv,zero_attn,lk", [
    (None, None, False, False, 10), (12, 20, False, False, 7), (None, None, True, True, 7),
    (12, 20, True, False, 3)])
def test_macs_equal_flop_counter_on_meta(kdim, vdim, bias_kv, zero_attn, lk):
    from netspec.ops import REGISTRY
    from netspec.ops.declare import Args

    e, lq = 64, 10
    args = {"embed_dim": e, "num_heads": 4, "kdim": kdim, "vdim": vdim, "batch_first": True,
            "add_bias_kv": bias_kv, "add_zero_attn": zero_attn}
    lt = REGISTRY["MultiheadAttention"]
    shapes = [(lq, e), (lk, kdim or e), (lk, vdim or e)]
    a = Args.filled(lt, args)
    ours = lt.macs(a, shapes, (lq, e))
    for device in ("meta", "cpu"):
        module = nn.MultiheadAttention(**args, device=device).train()
        tensors = [torch.zeros(1, *s, device=device) for s in shapes]
        with FlopCounterMode(display=False) as counter:
            module(*tensors, need_weights=True)
        assert counter.get_total_flops() == 2 * ours, device


def test_check_self_and_cross_attention():
    result = netspec.check(SELF)
    assert result.ok and result.output_shape == (10, 8)
    attn = result.layers[0]
    assert attn.kwargs["embed_dim"] == 16
    assert attn.params == sum(p.numel() for p in nn.MultiheadAttention(16, 4).parameters())
    cross = netspec.check(CROSS)
    assert cross.ok and cross.output_shape == (10, 16)


def test_refusals_name_the_layer_and_the_numbers():
    def message(text):
        return [d.message for d in netspec.check(text).errors]

    assert message(CROSS.replace("num_heads: 4", "num_heads: 5")) == [
        "layer 2 'attn' (MultiheadAttention): embed_dim 16 is not divisible by num_heads 5"]
    assert message(CROSS.replace("kdim: 12", "kdim: 11")) == [
        "layer 2 'attn' (MultiheadAttention): the key (10×12 from 'kv') has 12 features, "
        "but kdim is 11"]
    assert "but vdim is 13" in message(CROSS.replace("vdim: 12", "vdim: 13"))[0]
    three = CROSS.replace("from: [q, kv]", "from: [q, kv, q]")
    assert "the key (10×12 from 'kv') and the value (10×16 from 'q')" in message(three)[0] \
        or "has 16 features, but vdim is 12" in message(three)[0]
    four = CROSS.replace("from: [q, kv]", "from: [q, kv, kv, q]")
    assert "MultiheadAttention takes three inputs (query, key, and value), got 4" in \
        message(four)[0]
    warned = netspec.check(SELF.replace(", batch_first: true", ""))
    assert warned.ok and any("batch_first" in d.message for d in warned.diagnostics)


@pytest.mark.parametrize("spec", [SELF, CROSS])
def test_build_codegen_summary_render(spec, tmp_path):
    result = netspec.check(spec)
    model = netspec.build(result).eval()
    x = torch.randn(2, 10, 16)
    with torch.no_grad():
        assert tuple(model(x).shape) == (2, *result.output_shape)
    source = generate(result, "class")
    # need_weights=False, as torchvision's EncoderBlock calls it: no attention weights are
    # computed (nor averaged), and eval takes torch's fused fast path; built the same
    assert ("x = self.attn(x, x, x, need_weights=False)[0]" in source) or \
        ("x = self.attn(x, kv, kv, need_weights=False)[0]" in source)
    (call,) = [n for n in model.graph.nodes if n.op == "call_module" and n.target == "attn"]
    assert call.kwargs == {"need_weights": False}
    name = result.network.name
    path = tmp_path / f"{name.lower()}.py"
    path.write_text(source)
    module_spec = importlib.util.spec_from_file_location(name.lower(), path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name.lower()] = module
    module_spec.loader.exec_module(module)
    generated = getattr(module, name)().eval()
    generated.load_state_dict(build_weights_for(generated, source, model.state_dict()))
    with torch.no_grad():
        assert torch.equal(generated(x), model(x))
    rows = {r.name: r for r in summarize(result).rows}
    assert rows["attn"].params == result.layers[-1 if spec is CROSS else 0].params
    assert rows["attn"].macs > 0
    assert "MultiheadAttention" in to_dot(result)

"""Zoo specs against torchvision: weight for weight, and shape for shape."""

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from zoo_helpers import ZOO, assert_hook_shapes, assert_torchvision_equivalent, flop_counter_macs

import netspec
from netspec.emit.summary import summarize


def vit_b_16():
    """torchvision's ViT-B/16 with a random head: torchvision starts it at zeros, and zero
    logits would agree whatever the encoder computed."""
    model = torchvision.models.vit_b_16()
    torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    return model


def convnext_tiny():
    """torchvision's ConvNeXt-T with its layer scales drawn in [0.2, 1]: at torchvision's
    1e-6 every block is nearly the identity, and outputs would agree whatever the blocks
    computed."""
    model = torchvision.models.convnext_tiny()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("layer_scale"):
                parameter.uniform_(0.2, 1.0)
    return model


def inception_v3():
    """torchvision's default constructor: aux_logits=True, transform_input=False (True only
    with pretrained weights), init_weights None, which means True (truncated normal)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the init_weights=None notice
        return torchvision.models.inception_v3(weights=None)


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
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(), (3, 224, 224)),
    "mnasnet1_0": (lambda: torchvision.models.mnasnet1_0(), (3, 224, 224)),
    "regnet_y_400mf": (lambda: torchvision.models.regnet_y_400mf(), (3, 224, 224)),
    "shufflenet_v2_x1_0": (lambda: torchvision.models.shufflenet_v2_x1_0(), (3, 224, 224)),
    "vit_b_16": (vit_b_16, (3, 224, 224)),
    "convnext_tiny": (convnext_tiny, (3, 224, 224)),
    "swin_t": (lambda: torchvision.models.swin_t(), (3, 224, 224)),
    "inception_v3": (inception_v3, (3, 299, 299)),
}

# held exactly (not within summary's 1%) to FlopCounterMode on both models: SE gates, grouped
# and depthwise convolutions, Mean pooling, channel split and shuffle, window attention,
# Inception v3's factorised convolutions
EXACT_MACS = ["efficientnet_b0", "mnasnet1_0", "regnet_y_400mf", "shufflenet_v2_x1_0",
              "swin_t", "inception_v3"]


@pytest.mark.parametrize("stem", sorted(TORCHVISION))
def test_matches_torchvision_weight_for_weight(stem):
    make, shape = TORCHVISION[stem]
    model = assert_torchvision_equivalent(ZOO / f"{stem}.yaml", make(), shape)
    assert_hook_shapes(ZOO / f"{stem}.yaml", model)


@pytest.mark.parametrize("spec", sorted(ZOO.glob("*.yaml")), ids=lambda p: p.stem)
def test_static_shapes_match_forward_hooks(spec):
    assert_hook_shapes(spec)


@pytest.mark.parametrize("stem, outputs", [("googlenet", "GoogLeNetOutputs"),
                                           ("inception_v3", "InceptionOutputs")])
def test_aux_heads_return_what_torchvision_returns(stem, outputs):
    """Training: GoogLeNetOutputs(logits, aux_logits2, aux_logits1) and InceptionOutputs(
    logits, aux_logits), the aux heads on; eval: the logits alone, the aux heads not run
    (torchvision's eager_outputs)."""
    make, shape = TORCHVISION[stem]
    reference = make()
    model = netspec.build(ZOO / f"{stem}.yaml")
    assert list(model.state_dict()) == list(reference.state_dict())  # the same order too
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    for m in (model, reference):  # training mode, dropout off: deterministic
        m.train()
        for d in m.modules():
            if isinstance(d, torch.nn.Dropout):
                d.eval()
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert type(ours).__name__ == type(theirs).__name__ == outputs
    assert ours._fields == theirs._fields
    for a, b in zip(ours, theirs, strict=True):
        assert (a - b).abs().max().item() <= 1e-4
    model.eval()
    reference.eval()
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert isinstance(ours, torch.Tensor) and (ours - theirs).abs().max().item() <= 1e-5


class _Attention(nn.Module):
    """nanoGPT's CausalSelfAttention: the reference specs/zoo/gpt_tiny.yaml is checked
    against, written as people write it."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)

    def forward(self, x):
        import torch.nn.functional as F

        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(dim, 4 * dim))
        self.mlp.add_module("gelu", nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _GPT(nn.Module):
    def __init__(self, vocab=512, context=64, dim=128, heads=4, layers=4):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Parameter(torch.randn(context, dim) * 0.02)
        self.drop = nn.Dropout(0.0)
        self.h = nn.Sequential(*[_Block(dim, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as GPT-2's

    def forward(self, idx):
        return self.lm_head(self.ln_f(self.h(self.drop(self.wte(idx) + self.wpe))))


def test_gpt_tiny_against_a_hand_written_decoder():
    """Causal mask (fused SDPA, is_causal) and tied embeddings: the same state_dict keys in
    the same order, one tied Parameter, strict load, the same logits; every named layer's
    shape as check says (forward hooks); MACs as FlopCounterMode counts them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import netspec
    from netspec.emit.summary import summarize

    torch.manual_seed(0)
    reference = _GPT().eval()
    spec = ZOO / "gpt_tiny.yaml"
    model = netspec.build(spec).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    assert model.lm_head.weight is model.wte.weight
    count = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in model.parameters()) == count == netspec.check(spec).total_params
    model.load_state_dict(reference.state_dict(), strict=True)
    for batch in (1, 3):
        idx = torch.randint(0, 512, (batch, 64))
        with torch.no_grad():
            assert (model(idx) - reference(idx)).abs().max().item() <= 1e-5
    # the mask is causal: changing a later token leaves earlier logits unchanged
    idx = torch.randint(0, 512, (1, 64))
    changed = idx.clone()
    changed[0, 40] = (idx[0, 40] + 1) % 512
    with torch.no_grad():
        assert torch.equal(model(idx)[:, :40], model(changed)[:, :40])
    assert_hook_shapes(spec, model)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    # the math kernel: FlopCounterMode has no formula for the CPU's fused flash kernel
    # (it counts 0 there)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, \
            torch.no_grad():
        reference(torch.zeros(1, 64, dtype=torch.int64))
    assert summarize(spec).macs == counter.get_total_flops() // 2


def llama_tiny():
    """transformers' LlamaForCausalLM as specs/zoo/llama_tiny.yaml declares it, random
    weights (no download), its default attention (sdpa); the RMSNorm weights, which start at
    ones, drawn in [0.5, 1.5], so that a norm taking another's weight would show."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=688,
                         num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                         max_position_embeddings=512, rope_theta=10000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.uniform_(0.5, 1.5)
    return model


def test_llama_tiny_against_transformers():
    """RMSNorm, rotary positions, causal grouped-query attention (8 query heads over 2
    key/value heads) and the SiLU-gated MLP: the same state_dict keys and shapes, strict load,
    the same logits at the declared 64 tokens and at 37 (lengths read when it runs); causal;
    every named layer's shape as check says; MACs as FlopCounterMode counts the reference."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    reference = llama_tiny()
    assert reference.config._attn_implementation == "sdpa"
    spec = ZOO / "llama_tiny.yaml"
    model = netspec.build(spec).eval()
    ours, theirs = model.state_dict(), reference.state_dict()
    assert set(ours) == set(theirs)  # rotary inv_freq is no persistent buffer in either
    # The order differs only where a spec cannot follow it: a decoder layer registers its two
    # norms after the MLP they feed, a spec declares each entry before the ones it feeds
    in_flow_order = []
    for key in theirs:
        if "layernorm" in key:
            continue
        for part, norm in (("self_attn.q_proj", "input_layernorm"),
                           ("mlp.gate_proj", "post_attention_layernorm")):
            if f".{part}." in key:
                in_flow_order.append(key.replace(part, norm))
        in_flow_order.append(key)
    assert list(ours) == in_flow_order
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    count = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in model.parameters()) == count == netspec.check(spec).total_params
    model.load_state_dict(theirs, strict=True)
    for batch, length in ((2, 64), (3, 37)):
        ids = torch.randint(0, 1000, (batch, length))
        with torch.no_grad():
            logits = reference(ids, use_cache=False).logits
            assert (model(ids) - logits).abs().max().item() <= 1e-5, length
    changed = ids.clone()  # a later token leaves earlier logits unchanged
    changed[:, 20] = (ids[:, 20] + 1) % 1000
    with torch.no_grad():
        assert torch.equal(model(ids)[:, :20], model(changed)[:, :20])
    assert_hook_shapes(spec, model)
    # the math kernel: FlopCounterMode has no formula for the CPU's fused kernel (counts 0)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, \
            torch.no_grad():
        reference(torch.zeros(1, 64, dtype=torch.int64), use_cache=False)
    assert summarize(spec).macs == counter.get_total_flops() // 2


@pytest.mark.parametrize("stem", EXACT_MACS)
def test_summary_macs_are_flop_counter_s(stem):
    make, shape = TORCHVISION[stem]
    with torch.device("meta"):
        model = netspec.build(ZOO / f"{stem}.yaml")
    reference = make().to("meta")
    ours = summarize(ZOO / f"{stem}.yaml").macs
    assert ours == flop_counter_macs(model, shape) == flop_counter_macs(reference, shape)


def test_inception_v3_training_macs_count_its_aux_head():
    """summary's training MACs are FlopCounterMode's on torchvision's model in training (the
    aux head run), halved; its eval MACs leave the head out."""
    make, shape = TORCHVISION["inception_v3"]
    reference = make().to("meta").train()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        reference(torch.zeros(2, *shape, device="meta"))  # batch 2: BatchNorm in training
    summary = summarize(ZOO / "inception_v3.yaml")
    assert summary.training_macs == counter.get_total_flops() / 4 > summary.macs


def test_convnext_stochastic_depth_grows_as_torchvision_s():
    """Training behaves as torchvision's too: every StochasticDepth has its p (0.1 * k / 17
    over the 18 blocks) and mode, module for module."""
    import netspec

    ours = {n: repr(m) for n, m in netspec.build(ZOO / "convnext_tiny.yaml").named_modules()
            if type(m).__name__ == "StochasticDepth"}
    theirs = {n: repr(m) for n, m in torchvision.models.convnext_tiny().named_modules()
              if type(m).__name__ == "StochasticDepth"}
    assert len(ours) == 18 and ours == theirs


def test_swin_t_keys_in_torchvision_s_order_and_stochastic_depth_as_its():
    """The state_dict in the reference's order (relative_position_bias_table and the
    relative_position_index buffer before qkv and proj, as torchvision registers them), and
    training as torchvision's: each block's two StochasticDepth (torchvision calls its one
    module twice) have its p, 0.2 * k / 11 over the 12 blocks."""
    with torch.device("meta"):
        ours = netspec.build(ZOO / "swin_t.yaml")
        theirs = torchvision.models.swin_t()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    expected = {n: repr(m) for n, m in theirs.named_modules()
                if type(m).__name__ == "StochasticDepth"}
    for suffix in ("stochastic_depth", "mlp_stochastic_depth"):
        got = {n.removesuffix(suffix) + "stochastic_depth": repr(m)
               for n, m in ours.named_modules() if n.endswith("." + suffix)}
        assert len(got) == 12 and got == expected, suffix

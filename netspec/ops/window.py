"""Window partitions of a feature map (MaxViT's block and grid attention, torchvision's
WindowPartition / WindowDepartition): a C×H×W map cut into p×p windows of tokens, and the
windows put back.

Declared as a pair rather than spelled as Reshape + Permute + Reshape: cutting H and W
into H/p × p and W/p × p needs two sizes computed from the tensor, which a Reshape (one
-1) cannot read, and the pair reads as the paper and torchvision write it.  In a built
model they are plain functions (no modules, no state_dict keys); generated files define
them once, with the source netspec.ops.torch_side runs.

Swin Transformer's window ops, as torchvision declares them: ShiftedWindowAttention(V2)
and PatchMerging(V2).

Each is one module op rather than its steps spelled out in a spec, because its forward
computes from the input's size what no static entry can say: the padding of H and W to
multiples of the window, the shift dropped where the window covers the padded input, and
the attention mask of the shifted windows.  torchvision marks these functions
(shifted_window_attention, _patch_merging_pad) with torch.fx.wrap, so a traced Swin calls
them as one step too.  netspec builds torchvision's classes (their state_dict keys:
relative_position_bias_table, the relative_position_index buffer, qkv, proj; V2's
logit_scale, relative_coords_table, cpb_mlp); generated code defines its own copies below,
so it needs only PyTorch.  Samples are channels last: H×W×C.

timm's Swin and MaxViT fold their windows into the batch in a method of the block
(SwinTransformerBlock._attn, PartitionAttentionCl._partition_attn) around the block's
attention child: SwinBlockAttention and BlockGridAttention are that method and that child
as one op (Torch.stands_for, netspec/importer/stand_ins.py), netspec's own classes with the
child's state_dict keys (timm keeps the position index out of it).
"""

from __future__ import annotations

import math

from netspec.ops.declare import (
    Arg,
    Args,
    ArgType,
    Bool,
    Code,
    Draw,
    Enum,
    Int,
    Port,
    Probability,
    Shape,
    ShapeError,
    StandIn,
    Torch,
    fmt,
    layer,
    numel,
    torch_side_source,
)


@layer("WindowPartition", Arg("p", Int()), family="shape",
       inputs=(Port(dtype="any", ranks={3: "C×H×W"}),),
       torch=Torch("netspec.ops.torch_side.window_partition", module=False, call_args=("p",)),
       code=Code(call="window_partition", helper=torch_side_source("window_partition")),
       draw=Draw(key_args=lambda kw: f"p {kw.get('p', '?')}"), origin="partitioned")
def window_partition(a: Args, x: Shape) -> Shape:
    """torchvision's WindowPartition()(x, p): a C×H×W map as (H/p·W/p) windows of p·p
    C-vectors; H and W must be multiples of p (torch's reshape refuses them otherwise)."""
    c, h, w = x
    for what, n in (("height", h), ("width", w)):
        if n % a.p:
            raise ShapeError(f"the map's {what} {n} (input {fmt(x)}) is not a multiple of p "
                             f"{a.p}: it cannot be cut into {a.p}×{a.p} windows", "p")
    return ((h // a.p) * (w // a.p), a.p * a.p, c)


@layer("WindowDepartition", Arg("p", Int()), Arg("h_partitions", Int()),
       Arg("w_partitions", Int()), family="shape",
       inputs=(Port(dtype="any", ranks={3: "windows×tokens×C"}),),
       torch=Torch("netspec.ops.torch_side.window_departition", module=False,
                   call_args=("p", "h_partitions", "w_partitions")),
       code=Code(call="window_departition", helper=torch_side_source("window_departition")),
       draw=Draw(key_args=lambda kw: f"p {kw.get('p', '?')}, {kw.get('h_partitions', '?')}×"
                                     f"{kw.get('w_partitions', '?')} windows"),
       origin="departitioned")
def window_departition(a: Args, x: Shape) -> Shape:
    """torchvision's WindowDepartition()(x, p, h_partitions, w_partitions): windows of
    p·p C-vectors back on a C×(h_partitions·p)×(w_partitions·p) map.  As torch's reshape,
    it needs only the element counts to agree; the counts of windows and tokens are fixed
    when the network is made, as torchvision fixes them from its grid size."""
    g, pp, c = x
    want = a.h_partitions * a.w_partitions * a.p * a.p
    if g * pp != want:
        raise ShapeError(f"{g} windows of {pp} tokens (input {fmt(x)}) are {g * pp} tokens, "
                         f"and {a.h_partitions}×{a.w_partitions} windows of {a.p}×{a.p} are "
                         f"{want}", "h_partitions")
    return (c, a.h_partitions * a.p, a.w_partitions * a.p)


# ---------------------------------------------------------------- Swin

# torchvision takes a list of two ints (and copies it with list.copy: no tuple, no int)
PAIR_ITEM = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
WINDOW = ArgType({"type": "array", "items": PAIR_ITEM | {"minimum": 1}, "minItems": 2,
                  "maxItems": 2}, "a list of 2 positive integers")
SHIFT = ArgType({"type": "array", "items": PAIR_ITEM, "minItems": 2, "maxItems": 2},
                "a list of 2 non-negative integers")
CPB_HIDDEN = 512  # V2's continuous position bias MLP: Linear(2, 512), ReLU, Linear(512, heads)
MODULE = "torchvision.models.swin_transformer"


def _channels_last(x: Shape) -> int:
    return x[-1]


def _table_cells(a: Args) -> int:
    """Cells of the relative position table: every offset between two tokens of a window."""
    return (2 * a.window_size[0] - 1) * (2 * a.window_size[1] - 1)


def _padded(a: Args, x: Shape) -> tuple[int, int]:
    """H and W padded up to multiples of the window, as the forward pads them."""
    return (-(-x[0] // a.window_size[0]) * a.window_size[0],
            -(-x[1] // a.window_size[1]) * a.window_size[1])


def _projections(a: Args) -> int:
    return 4 * a.dim * a.dim + (3 * a.dim if a.qkv_bias else 0) + (a.dim if a.proj_bias else 0)


def _attention_macs(a: Args, x: Shape, y: Shape) -> int:
    """qkv and proj over every token of the padded input, and Q·Kᵀ and the weights·V within
    each window (window_size tokens, all heads: 2 · tokens · window tokens · C)."""
    tokens = math.prod(_padded(a, x))
    return 4 * tokens * a.dim * a.dim + 2 * tokens * numel(a.window_size) * a.dim


def _position_mlp_macs(a: Args) -> int:
    # V2's cpb_mlp runs once per forward on the table, whatever the batch: counted here as
    # for one sample, which is what FlopCounterMode finds at batch 1
    return _table_cells(a) * (2 * CPB_HIDDEN + CPB_HIDDEN * a.num_heads)


def _read_attention(m) -> dict:
    """The arguments a ShiftedWindowAttention(V2) was made with: dim and the biases are its
    qkv and proj Linears'."""
    return {"dim": m.qkv.in_features, "window_size": list(m.window_size),
            "shift_size": list(m.shift_size), "num_heads": m.num_heads,
            "qkv_bias": m.qkv.bias is not None, "proj_bias": m.proj.bias is not None,
            "attention_dropout": m.attention_dropout, "dropout": m.dropout}


def _read_merging(m) -> dict | str:
    """PatchMerging(V2)'s dim, where its norm is the default nn.LayerNorm (torchvision passes
    LayerNorm with eps 1e-5; another norm_layer is no argument a spec can write)."""
    norm = m.norm
    if type(norm).__name__ != "LayerNorm" or norm.eps != 1e-5 or not norm.elementwise_affine \
            or norm.bias is None:
        return f"its norm_layer is {norm!r}, not nn.LayerNorm's default (eps 1e-05)"
    return {"dim": m.dim}


def _key_args(kw: dict) -> str:
    window = kw.get("window_size", ["?", "?"])
    shift = kw.get("shift_size", [0])
    text = f"{kw.get('num_heads', '?')} heads, window {'×'.join(map(str, window))}"
    return text + (f", shift {'×'.join(map(str, shift))}" if any(shift) else "")


ATTENTION_ARGS = (
    Arg("dim", Int(), infer=_channels_last, noun="channels"),
    Arg("window_size", WINDOW), Arg("shift_size", SHIFT), Arg("num_heads", Int()),
    Arg("qkv_bias", Bool, True), Arg("proj_bias", Bool, True),
    Arg("attention_dropout", Probability, 0.0), Arg("dropout", Probability, 0.0),
)


def _attention_rule(a: Args, x: Shape) -> Shape:
    if x[-1] % a.num_heads:
        raise ShapeError(f"the {x[-1]} channels are not divisible by num_heads {a.num_heads}",
                         "num_heads")
    return x


# The generated file's copy of torchvision's shifted window attention; blocks apart by two
# blank lines are written once however many ops use them.
_WINDOW_FUNCTIONS = '''def swin_position_index(window_size: list[int]) -> torch.Tensor:
    """For every pair of tokens in a window, the row of their offset in the position table."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size[0]), torch.arange(window_size[1]), indexing="ij")
    ).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += window_size[0] - 1  # offsets from 0
    relative[:, :, 1] += window_size[1] - 1
    relative[:, :, 0] *= 2 * window_size[1] - 1
    return relative.sum(-1).flatten()


def shifted_window_mask(
    pad_h: int, pad_w: int, window_size: list[int], shift: list[int], like: torch.Tensor
) -> torch.Tensor:
    """-100 between tokens of a shifted window that come from different regions, else 0."""
    mask = like.new_zeros((pad_h, pad_w))
    h_slices = ((0, -window_size[0]), (-window_size[0], -shift[0]), (-shift[0], None))
    w_slices = ((0, -window_size[1]), (-window_size[1], -shift[1]), (-shift[1], None))
    count = 0
    for h in h_slices:
        for w in w_slices:
            mask[h[0] : h[1], w[0] : w[1]] = count
            count += 1
    mask = mask.view(
        pad_h // window_size[0], window_size[0], pad_w // window_size[1], window_size[1]
    )
    mask = mask.permute(0, 2, 1, 3).reshape(-1, window_size[0] * window_size[1])
    mask = mask.unsqueeze(1) - mask.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


def shifted_window_attention(
    x: torch.Tensor,
    attn: nn.Module,
    position_bias: torch.Tensor,
    logit_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Self-attention within windows of a B×H×W×C tensor (torchvision's Swin): padded to
    multiples of the window, cyclically shifted unless the window covers it, then back."""
    b, h, w, c = x.shape
    ws, heads = attn.window_size, attn.num_heads
    x = nn.functional.pad(x, (0, 0, 0, (ws[1] - w % ws[1]) % ws[1], 0, (ws[0] - h % ws[0]) % ws[0]))
    _, pad_h, pad_w, _ = x.shape
    # no shift along a side the window covers
    shift = [
        0 if ws[0] >= pad_h else attn.shift_size[0],
        0 if ws[1] >= pad_w else attn.shift_size[1],
    ]
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    windows = (pad_h // ws[0]) * (pad_w // ws[1])
    x = x.view(b, pad_h // ws[0], ws[0], pad_w // ws[1], ws[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b * windows, ws[0] * ws[1], c)
    qkv_bias = attn.qkv.bias
    if logit_scale is not None and qkv_bias is not None:  # V2: no bias on the keys
        qkv_bias = qkv_bias.clone()
        qkv_bias[c : 2 * c].zero_()
    qkv = nn.functional.linear(x, attn.qkv.weight, qkv_bias)
    q, k, v = qkv.reshape(x.size(0), x.size(1), 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    if logit_scale is not None:  # V2: cosine attention
        q, k = nn.functional.normalize(q, dim=-1), nn.functional.normalize(k, dim=-1)
        scores = q @ k.transpose(-2, -1)
        scores = scores * torch.clamp(logit_scale, max=4.605170185988092).exp()  # log(100)
    else:
        scores = (q * (c // heads) ** -0.5).matmul(k.transpose(-2, -1))
    scores = scores + position_bias
    if sum(shift) > 0:
        mask = shifted_window_mask(pad_h, pad_w, ws, shift, x)
        scores = scores.view(x.size(0) // windows, windows, heads, x.size(1), x.size(1))
        scores = (scores + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, x.size(1), x.size(1))
    scores = nn.functional.dropout(
        scores.softmax(-1), p=attn.attention_dropout, training=attn.training
    )
    x = scores.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), c)
    x = nn.functional.dropout(attn.proj(x), p=attn.dropout, training=attn.training)
    x = x.view(b, pad_h // ws[0], pad_w // ws[1], ws[0], ws[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, pad_h, pad_w, c)
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
    return x[:, :h, :w, :].contiguous()'''

# the head of __init__ that torchvision's three window attentions (Swin, Swin V2, Video
# Swin) share: their arguments, qkv and proj; each class adds its position bias after it
_ATTENTION_INIT = '''    def __init__(
        self,
        dim: int,
        window_size: list[int],
        shift_size: list[int],
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.window_size, self.shift_size, self.num_heads = window_size, shift_size, num_heads
        self.attention_dropout, self.dropout = attention_dropout, dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)'''

_ATTENTION_CLASS = f'''class ShiftedWindowAttention(nn.Module):
    """Window attention with a learned relative position bias (torchvision's Swin)."""

{_ATTENTION_INIT}
        cells = (2 * window_size[0] - 1) * (2 * window_size[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(cells, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", swin_position_index(window_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index]
        bias = bias.view(tokens, tokens, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        return shifted_window_attention(x, self, bias)'''

_ATTENTION_V2_CLASS = f'''class ShiftedWindowAttentionV2(nn.Module):
    """Swin V2's window attention: cosine scores with a learned scale, and the position bias
    from an MLP over log-spaced offsets (torchvision's Swin V2)."""

{_ATTENTION_INIT}
        offsets = [torch.arange(-(n - 1), n, dtype=torch.float32) for n in window_size]
        table = torch.stack(torch.meshgrid(offsets, indexing="ij")).permute(1, 2, 0)
        table = table.contiguous().unsqueeze(0)
        table[:, :, :, 0] /= window_size[0] - 1
        table[:, :, :, 1] /= window_size[1] - 1
        table *= 8  # to [-8, 8], then log-spaced
        table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0
        self.register_buffer("relative_coords_table", table)
        self.register_buffer("relative_position_index", swin_position_index(window_size))
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((num_heads, 1, 1))))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, 512, bias=True),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_heads, bias=False),
        )
        if qkv_bias:
            self.qkv.bias[dim : 2 * dim].data.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.window_size[0] * self.window_size[1]
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        bias = table[self.relative_position_index].view(tokens, tokens, -1)
        bias = 16 * torch.sigmoid(bias.permute(2, 0, 1).contiguous().unsqueeze(0))
        return shifted_window_attention(x, self, bias, self.logit_scale)'''


def _register_attention(name: str, helper: str, params, macs, buffers):
    return layer(name, *ATTENTION_ARGS, family="recurrent", ranks={3: "H×W×C"},
                 torch=Torch(f"{MODULE}.{name}"),
                 code=Code(call=name, helper=f"{_WINDOW_FUNCTIONS}\n\n\n{helper}"),
                 draw=Draw(abbrev="W-MSA", key_args=_key_args), params=params, macs=macs,
                 buffers=buffers, read_module=_read_attention)


@_register_attention(
    "ShiftedWindowAttention", _ATTENTION_CLASS,
    params=lambda a, x: _projections(a) + _table_cells(a) * a.num_heads,
    macs=_attention_macs,
    buffers=lambda a, x: {"int64": numel(a.window_size) ** 2})
def shifted_window_attention(a: Args, x: Shape) -> Shape:
    """torchvision's Swin window attention on an H×W×C sample: H and W padded to multiples
    of window_size, shifted by shift_size (not where the window covers the padded size),
    attention within each window with a relative position bias table, back; same shape."""
    return _attention_rule(a, x)


@_register_attention(
    "ShiftedWindowAttentionV2", _ATTENTION_V2_CLASS,
    params=lambda a, x: (_projections(a) + a.num_heads + 3 * CPB_HIDDEN
                         + CPB_HIDDEN * a.num_heads),
    macs=lambda a, x, y: _attention_macs(a, x, y) + _position_mlp_macs(a),
    buffers=lambda a, x: {"float32": 2 * _table_cells(a), "int64": numel(a.window_size) ** 2})
def shifted_window_attention_v2(a: Args, x: Shape) -> Shape:
    """Swin V2's window attention: as ShiftedWindowAttention, with cosine scores scaled by a
    learned logit_scale and the position bias from a small MLP (cpb_mlp)."""
    return _attention_rule(a, x)


# ---------------------------------------------------------------- timm's Swin block attention

TIMM_SWIN = "timm.models.swin_transformer"

# timm's SwinTransformerBlock._attn on a B×H×W×C tensor, with its WindowAttention's forward
# inlined (the unfused path timm takes by default; its fused one differs by rounding):
# rolled before it is padded (torchvision pads first), the shift never dropped here (timm
# fixes window and shift when the block is made, from its input resolution), and the mask
# of the padded size added where it shifts
_BLOCK_FUNCTION = '''def swin_block_attention(x: torch.Tensor, attn: nn.Module) -> torch.Tensor:
    """Self-attention within windows of a B×H×W×C tensor (timm's Swin block): cyclically
    shifted, padded to multiples of the window, attention within each window, back."""
    b, h, w, c = x.shape
    ws, shift, heads = attn.window_size, attn.shift_size, attn.num_heads
    if any(shift):
        x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    x = nn.functional.pad(x, (0, 0, 0, (ws[1] - w % ws[1]) % ws[1], 0, (ws[0] - h % ws[0]) % ws[0]))
    _, pad_h, pad_w, _ = x.shape
    windows, tokens = (pad_h // ws[0]) * (pad_w // ws[1]), ws[0] * ws[1]
    x = x.view(b, pad_h // ws[0], ws[0], pad_w // ws[1], ws[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b * windows, tokens, c)
    qkv = attn.qkv(x).reshape(x.size(0), tokens, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    bias = attn.relative_position_bias_table[attn.relative_position_index.view(-1)]
    bias = bias.view(tokens, tokens, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
    scores = (q * attn.scale) @ k.transpose(-2, -1) + bias
    if any(shift):
        mask = shifted_window_mask(pad_h, pad_w, ws, shift, x)
        scores = scores.view(-1, windows, heads, tokens, tokens) + mask.unsqueeze(1).unsqueeze(0)
        scores = scores.view(-1, heads, tokens, tokens)
    scores = nn.functional.dropout(
        scores.softmax(-1), p=attn.attention_dropout, training=attn.training
    )
    x = (scores @ v).transpose(1, 2).reshape(x.size(0), tokens, -1)
    x = nn.functional.dropout(attn.proj(x), p=attn.dropout, training=attn.training)
    x = x.view(b, pad_h // ws[0], pad_w // ws[1], ws[0], ws[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, pad_h, pad_w, c)
    x = x[:, :h, :w, :].contiguous()
    if any(shift):
        x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
    return x'''

_BLOCK_ATTENTION_CLASS = f'''class SwinBlockAttention(nn.Module):
    """timm's Swin block attention step: its WindowAttention's state_dict (no index, no
    mask: timm keeps both out of it) around the shift, padding and windows of its block."""

{_ATTENTION_INIT}
        self.scale = (dim // num_heads) ** -0.5
        cells = (2 * window_size[0] - 1) * (2 * window_size[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(cells, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        index = swin_position_index(window_size)
        self.register_buffer("relative_position_index", index, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swin_block_attention(x, self)'''


def _read_block_attention(block) -> dict | str:
    """The arguments of timm's SwinTransformerBlock's attention step, read off the block
    (window and shift as it fixed them for its input resolution) and its WindowAttention."""
    attn = block.attn
    if attn.qkv.out_features != 3 * attn.qkv.in_features:
        return (f"its WindowAttention's head_dim makes qkv {attn.qkv.out_features} wide, not 3 "
                f"× its {attn.qkv.in_features} channels")
    return {"dim": attn.qkv.in_features, "window_size": list(block.window_size),
            "shift_size": list(block.shift_size), "num_heads": attn.num_heads,
            "qkv_bias": attn.qkv.bias is not None, "proj_bias": attn.proj.bias is not None,
            "attention_dropout": attn.attn_drop.p, "dropout": attn.proj_drop.p}


@layer("SwinBlockAttention", *ATTENTION_ARGS, family="recurrent", ranks={3: "H×W×C"},
       torch=Torch("netspec.ops.torch_side.SwinBlockAttention",
                   stands_for=StandIn(f"{TIMM_SWIN}.SwinTransformerBlock", "_attn", "attn",
                                      f"{TIMM_SWIN}.WindowAttention")),
       code=Code(call="SwinBlockAttention",
                 helper=f"{_WINDOW_FUNCTIONS}\n\n\n{_BLOCK_FUNCTION}\n\n\n"
                        f"{_BLOCK_ATTENTION_CLASS}"),
       draw=Draw(abbrev="W-MSA", key_args=_key_args),
       params=lambda a, x: _projections(a) + _table_cells(a) * a.num_heads,
       macs=_attention_macs, buffers=lambda a, x: {"int64": numel(a.window_size) ** 2},
       read_module=_read_block_attention)
def swin_block_attention(a: Args, x: Shape) -> Shape:
    """timm's Swin block attention step (SwinTransformerBlock._attn with its WindowAttention)
    on an H×W×C sample: shifted by shift_size, H and W padded to multiples of window_size,
    attention within each window with a relative position bias table, back; same shape.
    Its state_dict is timm's WindowAttention's (relative_position_bias_table, qkv, proj)."""
    return _attention_rule(a, x)


# ---------------------------------------------------------------- timm's MaxViT partition attention

TIMM_MAXVIT = "timm.models.maxxvit"

# timm's PartitionAttentionCl._partition_attn on a B×H×W×C tensor, with its AttentionCl's
# forward inlined (the unfused path; timm's fused one differs by rounding): windows of
# neighbours (block) or of tokens H/g and W/g apart (grid) folded into the batch, back
_PARTITION_FUNCTION = '''def partition_attention(x: torch.Tensor, attn: nn.Module) -> torch.Tensor:
    """Self-attention within p×p partitions of a B×H×W×C tensor (timm's MaxViT): windows
    of neighbouring tokens (block) or tokens H/p and W/p apart (grid)."""
    b, h, w, c = x.shape
    p, heads, size = attn.partition_size, attn.num_heads, attn.dim_head
    if attn.partition == "block":
        x = x.view(b, h // p[0], p[0], w // p[1], p[1], c).permute(0, 1, 3, 2, 4, 5)
    else:
        x = x.view(b, p[0], h // p[0], p[1], w // p[1], c).permute(0, 2, 4, 1, 3, 5)
    x = x.reshape(-1, p[0] * p[1], c)
    if attn.head_first:
        qkv = attn.qkv(x).view(x.size(0), -1, heads, size * 3).transpose(1, 2)
        q, k, v = qkv.chunk(3, dim=3)
    else:
        qkv = attn.qkv(x).reshape(x.size(0), -1, 3, heads, size).transpose(1, 3)
        q, k, v = qkv.unbind(2)
    scores = (q * size**-0.5) @ k.transpose(-2, -1) + attn.rel_pos()
    scores = nn.functional.dropout(
        scores.softmax(-1), p=attn.attention_dropout, training=attn.training
    )
    x = (scores @ v).transpose(1, 2).reshape(x.size(0), x.size(1), -1)
    x = nn.functional.dropout(attn.proj(x), p=attn.dropout, training=attn.training)
    if attn.partition == "block":
        x = x.view(b, h // p[0], w // p[1], p[0], p[1], c).permute(0, 1, 3, 2, 4, 5)
    else:
        x = x.view(b, h // p[0], w // p[1], p[0], p[1], c).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, h, w, c)'''

_PARTITION_CLASSES = '''class WindowPositionBias(nn.Module):
    """A learned bias for every offset between two tokens of a window, per head (timm's
    RelPosBias: the table; the index kept out of the state_dict)."""

    def __init__(self, window_size: list[int], num_heads: int):
        super().__init__()
        self.tokens = window_size[0] * window_size[1]
        cells = (2 * window_size[0] - 1) * (2 * window_size[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(cells, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        index = swin_position_index(window_size)
        self.register_buffer("relative_position_index", index, persistent=False)

    def forward(self) -> torch.Tensor:
        bias = self.relative_position_bias_table[self.relative_position_index]
        return bias.view(self.tokens, self.tokens, -1).permute(2, 0, 1).unsqueeze(0)


class BlockGridAttention(nn.Module):
    """timm's MaxViT block or grid attention step: its AttentionCl's state_dict (qkv,
    rel_pos, proj) around the partitions of its PartitionAttentionCl."""

    def __init__(
        self,
        dim: int,
        partition: str,
        partition_size: list[int],
        dim_head: int = 32,
        bias: bool = True,
        head_first: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.partition, self.partition_size = partition, partition_size
        self.dim_head, self.num_heads, self.head_first = dim_head, dim // dim_head, head_first
        self.attention_dropout, self.dropout = attention_dropout, dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=bias)
        self.rel_pos = WindowPositionBias(partition_size, self.num_heads)
        self.proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return partition_attention(x, self)'''


def _read_partition_attention(block) -> dict | str:
    """The arguments of timm's PartitionAttentionCl's attention step, read off the block
    (block or grid, the partition size) and its AttentionCl."""
    attn = block.attn
    rel_pos = attn.rel_pos
    if type(rel_pos).__name__ != "RelPosBias" or rel_pos.prefix_tokens:
        return (f"its AttentionCl's position bias is {type(rel_pos).__name__}, not RelPosBias "
                "(netspec's BlockGridAttention has timm's RelPosBias)")
    dim = attn.qkv.in_features
    if attn.proj.out_features != dim or attn.qkv.out_features != 3 * dim:
        return (f"its AttentionCl maps {dim} channels to {attn.proj.out_features} through "
                f"qkv of {attn.qkv.out_features}, not 3 × {dim}")
    if (attn.qkv.bias is None) != (attn.proj.bias is None):
        return "its AttentionCl has a bias on only one of qkv and proj"
    return {"dim": dim, "partition": "block" if block.partition_block else "grid",
            "partition_size": list(block.partition_size), "dim_head": attn.dim_head,
            "bias": attn.qkv.bias is not None, "head_first": attn.head_first,
            "attention_dropout": attn.attn_drop.p, "dropout": attn.proj_drop.p}


def _partition_rule(a: Args, x: Shape) -> Shape:
    h, w, c = x
    if c % a.dim_head:
        raise ShapeError(f"the {c} channels are not divisible by dim_head {a.dim_head}",
                         "dim_head")
    for what, n, p in (("height", h, a.partition_size[0]), ("width", w, a.partition_size[1])):
        if n % p:
            raise ShapeError(f"the map's {what} {n} (input {fmt(x)}) is not a multiple of "
                             f"partition_size {p}: it cannot be cut into {a.partition}s of "
                             f"{fmt(a.partition_size)}", "partition_size")
    return x


def _partition_macs(a: Args, x: Shape, y: Shape) -> int:
    """qkv and proj over every token, Q·Kᵀ and the weights·V within each partition."""
    tokens = x[0] * x[1]
    return 4 * tokens * a.dim * a.dim + 2 * tokens * numel(a.partition_size) * a.dim


def _partition_key_args(kw: dict) -> str:
    size = "×".join(map(str, kw.get("partition_size", ["?", "?"])))
    return f"{kw.get('partition', '?')} {size}, heads of {kw.get('dim_head', 32)}"


@layer("BlockGridAttention", Arg("dim", Int(), infer=_channels_last, noun="channels"),
       Arg("partition", Enum("block", "grid")), Arg("partition_size", WINDOW),
       Arg("dim_head", Int(), 32), Arg("bias", Bool, True), Arg("head_first", Bool, True),
       Arg("attention_dropout", Probability, 0.0), Arg("dropout", Probability, 0.0),
       family="recurrent", ranks={3: "H×W×C"},
       torch=Torch("netspec.ops.torch_side.BlockGridAttention",
                   stands_for=StandIn(f"{TIMM_MAXVIT}.PartitionAttentionCl", "_partition_attn",
                                      "attn", f"{TIMM_MAXVIT}.AttentionCl")),
       code=Code(call="BlockGridAttention",
                 helper=f"{_WINDOW_FUNCTIONS}\n\n\n{_PARTITION_FUNCTION}\n\n\n"
                        f"{_PARTITION_CLASSES}"),
       draw=Draw(abbrev="P-MSA", key_args=_partition_key_args),
       params=lambda a, x: (4 * a.dim * a.dim + (4 * a.dim if a.bias else 0)
                            + (2 * a.partition_size[0] - 1) * (2 * a.partition_size[1] - 1)
                            * (a.dim // a.dim_head)),
       macs=_partition_macs, buffers=lambda a, x: {"int64": numel(a.partition_size) ** 2},
       read_module=_read_partition_attention)
def partition_attention(a: Args, x: Shape) -> Shape:
    """timm's MaxViT attention step (PartitionAttentionCl._partition_attn with its
    AttentionCl) on an H×W×C sample: attention within partition_size windows of
    neighbouring tokens (partition block) or of tokens H/p and W/p apart (grid), with a
    relative position bias table, dim / dim_head heads; same shape.  H and W must be
    multiples of partition_size (timm asserts them).  Its state_dict is timm's AttentionCl's
    (qkv, rel_pos.relative_position_bias_table, proj)."""
    return _partition_rule(a, x)


_MERGING_PAD = '''def patch_merging_pad(x: torch.Tensor) -> torch.Tensor:
    """...×H×W×C -> ...×H/2×W/2×4C: each 2×2 patch's tokens side by side (odd sizes padded)."""
    h, w, _ = x.shape[-3:]
    x = nn.functional.pad(x, (0, 0, 0, w % 2, 0, h % 2))
    return torch.cat(
        [
            x[..., 0::2, 0::2, :],
            x[..., 1::2, 0::2, :],
            x[..., 0::2, 1::2, :],
            x[..., 1::2, 1::2, :],
        ],
        -1,
    )'''


def _merging_class(name: str, norm_width: str, body: str) -> str:
    return f'''class {name}(nn.Module):
    """Swin's downsampling: 2×2 patches concatenated, a LayerNorm and a Linear to 2C."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm({norm_width} * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return {body}'''


def _merging_rule(a: Args, x: Shape) -> Shape:
    """torchvision's PatchMerging on ...×H×W×C: every 2×2 patch (H and W padded to even
    sizes) concatenated to 4C channels, a LayerNorm and Linear(4C, 2C) (V2: the Linear, then
    a LayerNorm over 2C): ...×⌈H/2⌉×⌈W/2⌉×2C."""
    return (*x[:-3], -(-x[-3] // 2), -(-x[-2] // 2), 2 * a.dim)


def _register_merging(name: str, norm_width: int, body: str) -> None:
    layer(name, Arg("dim", Int(), infer=_channels_last, noun="channels"), family="linear",
          min_rank=3, torch=Torch(f"{MODULE}.{name}"),
          code=Code(call=name, helper=f"{_MERGING_PAD}\n\n\n"
                                      f"{_merging_class(name, str(norm_width), body)}"),
          draw=Draw(abbrev="PM"),
          params=lambda a, x: 8 * a.dim * a.dim + 2 * norm_width * a.dim,
          macs=lambda a, x, y: numel(y[:-1]) * 8 * a.dim * a.dim,
          read_module=_read_merging)(_merging_rule)


_register_merging("PatchMerging", 4, "self.reduction(self.norm(patch_merging_pad(x)))")
_register_merging("PatchMergingV2", 2, "self.norm(self.reduction(patch_merging_pad(x)))")



# ---------------------------------------------------------------- Video Swin (3D)

MODULE_3D = "torchvision.models.video.swin_transformer"
WINDOW_3D = ArgType({"type": "array", "items": PAIR_ITEM | {"minimum": 1}, "minItems": 3,
                     "maxItems": 3}, "a list of 3 positive integers")
SHIFT_3D = ArgType({"type": "array", "items": PAIR_ITEM, "minItems": 3, "maxItems": 3},
                   "a list of 3 non-negative integers")


def _window_3d(a: Args, x: Shape) -> list[int]:
    """The window the forward uses: a side no longer than the input's is the input's (and
    is not shifted), as torchvision's _get_window_and_shift_size makes it."""
    return [min(w, n) for w, n in zip(a.window_size, x[:3], strict=True)]


def _attention_3d_macs(a: Args, x: Shape, y: Shape) -> int:
    """qkv and proj over every token of the input padded to multiples of the window, and
    Q·Kᵀ and the weights·V within each window (2 · tokens · window tokens · C)."""
    window = _window_3d(a, x)
    tokens = math.prod(-(-n // w) * w for n, w in zip(x[:3], window, strict=True))
    return 4 * tokens * a.dim * a.dim + 2 * tokens * math.prod(window) * a.dim


# The generated file's copy of torchvision's 3D shifted window attention; blocks apart by
# two blank lines are written once however many ops use them.
_WINDOW_3D_FUNCTIONS = '''def swin3d_position_index(window_size: list[int]) -> torch.Tensor:
    """For every pair of tokens in a 3D window, the row of their offset in the table."""
    coords = torch.stack(
        torch.meshgrid(*[torch.arange(n) for n in window_size], indexing="ij")
    ).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    for i in range(3):
        relative[:, :, i] += window_size[i] - 1  # offsets from 0
    relative[:, :, 0] *= (2 * window_size[1] - 1) * (2 * window_size[2] - 1)
    relative[:, :, 1] *= 2 * window_size[2] - 1
    return relative.sum(-1)


def shifted_window_mask_3d(
    padded: list[int], window: list[int], shift: list[int], like: torch.Tensor
) -> torch.Tensor:
    """-100 between tokens of a shifted 3D window that come from different regions, else 0."""
    mask = like.new_zeros(padded)
    slices = [((0, -window[i]), (-window[i], -shift[i]), (-shift[i], None)) for i in range(3)]
    count = 0
    for d in slices[0]:
        for h in slices[1]:
            for w in slices[2]:
                mask[d[0] : d[1], h[0] : h[1], w[0] : w[1]] = count
                count += 1
    mask = mask.view(
        padded[0] // window[0],
        window[0],
        padded[1] // window[1],
        window[1],
        padded[2] // window[2],
        window[2],
    )
    mask = mask.permute(0, 2, 4, 1, 3, 5).reshape(-1, window[0] * window[1] * window[2])
    mask = mask.unsqueeze(1) - mask.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


def shifted_window_attention_3d(x: torch.Tensor, attn: nn.Module) -> torch.Tensor:
    """Self-attention within windows of a B×T×H×W×C tensor (torchvision's Video Swin): a
    side no longer than the input's window is the input's and not shifted; padded to
    multiples of the window, cyclically shifted, then back."""
    b, t, h, w, c = x.shape
    heads, size = attn.num_heads, [t, h, w]
    ws = [min(n, size[i]) for i, n in enumerate(attn.window_size)]
    shift = [0 if size[i] <= n else attn.shift_size[i] for i, n in enumerate(attn.window_size)]
    vol = ws[0] * ws[1] * ws[2]
    bias = attn.relative_position_bias_table[
        attn.relative_position_index[:vol, :vol].flatten()
    ]
    bias = bias.view(vol, vol, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
    pad = [(ws[i] - size[i] % ws[i]) % ws[i] for i in range(3)]
    x = nn.functional.pad(x, (0, 0, 0, pad[2], 0, pad[1], 0, pad[0]))
    _, tp, hp, wp, _ = x.shape
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(-shift[0], -shift[1], -shift[2]), dims=(1, 2, 3))
    windows = (tp // ws[0]) * (hp // ws[1]) * (wp // ws[2])
    x = x.view(b, tp // ws[0], ws[0], hp // ws[1], ws[1], wp // ws[2], ws[2], c)
    x = x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b * windows, vol, c)
    qkv = attn.qkv(x)
    qkv = qkv.reshape(x.size(0), x.size(1), 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = (q * (c // heads) ** -0.5).matmul(k.transpose(-2, -1)) + bias
    if sum(shift) > 0:
        mask = shifted_window_mask_3d([tp, hp, wp], ws, shift, x)
        scores = scores.view(x.size(0) // windows, windows, heads, x.size(1), x.size(1))
        scores = (scores + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, x.size(1), x.size(1))
    scores = nn.functional.dropout(
        scores.softmax(-1), p=attn.attention_dropout, training=attn.training
    )
    x = scores.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), c)
    x = nn.functional.dropout(attn.proj(x), p=attn.dropout, training=attn.training)
    x = x.view(b, tp // ws[0], hp // ws[1], wp // ws[2], ws[0], ws[1], ws[2], c)
    x = x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, tp, hp, wp, c)
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(shift[0], shift[1], shift[2]), dims=(1, 2, 3))
    return x[:, :t, :h, :w, :].contiguous()'''

_ATTENTION_3D_CLASS = f'''class ShiftedWindowAttention3d(nn.Module):
    """3D window attention with a learned relative position bias (torchvision's Video Swin)."""

{_ATTENTION_INIT}
        cells = (2 * window_size[0] - 1) * (2 * window_size[1] - 1) * (2 * window_size[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(cells, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", swin3d_position_index(window_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shifted_window_attention_3d(x, self)'''


@layer("ShiftedWindowAttention3d", Arg("dim", Int(), infer=_channels_last, noun="channels"),
       Arg("window_size", WINDOW_3D), Arg("shift_size", SHIFT_3D), Arg("num_heads", Int()),
       Arg("qkv_bias", Bool, True), Arg("proj_bias", Bool, True),
       Arg("attention_dropout", Probability, 0.0), Arg("dropout", Probability, 0.0),
       family="recurrent", ranks={4: "T×H×W×C"},
       torch=Torch(f"{MODULE_3D}.ShiftedWindowAttention3d"),
       code=Code(call="ShiftedWindowAttention3d",
                 helper=f"{_WINDOW_3D_FUNCTIONS}\n\n\n{_ATTENTION_3D_CLASS}"),
       draw=Draw(abbrev="W-MSA", key_args=_key_args),
       params=lambda a, x: _projections(a) + math.prod(2 * n - 1 for n in a.window_size)
       * a.num_heads,
       macs=_attention_3d_macs,
       buffers=lambda a, x: {"int64": numel(a.window_size) ** 2}, read_module=_read_attention)
def shifted_window_attention_3d(a: Args, x: Shape) -> Shape:
    """torchvision's Video Swin window attention on a T×H×W×C sample: a window side no
    longer than the input's is the input's (and not shifted); T, H and W padded to
    multiples of the window, shifted by shift_size, attention within each window with a
    relative position bias table, back; same shape."""
    return _attention_rule(a, x)

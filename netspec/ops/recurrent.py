"""Sequence layers: RNN, LSTM, GRU, TransformerEncoderLayer and TransformerDecoderLayer
(two inputs: tgt and memory); the cells RNNCell, LSTMCell and GRUCell.

Samples are (L, features) with the batch first.  RNNs return (output, state); netspec keeps
the output tensor (built as a subclass that drops the state, so state_dict keys are
unchanged).  A 1-d sample is refused although PyTorch would take the batched 2-d tensor
as one unbatched sequence, mixing samples: that is never what a per-sample spec means.

A cell takes one step: a (features,) input and optionally its state, (hidden_size,) h (and
c for LSTMCell, torch's hx = (h, c)); torch starts a state not given at zeros.  It gives
the new h (LSTMCell: (h, c), of which h flows on).  As for the RNNs, a 0-d sample, which
torch would read as one unbatched input made of the whole batch, is refused."""

from __future__ import annotations

import sys

from netspec.ops.declare import (
    Arg,
    Args,
    Bool,
    Code,
    Draw,
    Enum,
    Float,
    Int,
    Output,
    Port,
    Probability,
    Shape,
    ShapeError,
    Torch,
    layer,
)
from netspec.ops.text import encoder_key_args, rnn_key_args

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
SEQUENCE = {2: "L×features"}


def _features(x: Shape) -> int:
    return x[-1]


def _batch_first(a: Args) -> None:
    if not a.batch_first:
        a.warn("batch_first is false: the layer reads dimension 0 (netspec's batch) as time; "
               "write batch_first: true for batch-first data", "batch_first")


def _rnn_rule(kind: str):
    def rule(a: Args, x: Shape | list[Shape]) -> Shape:
        states = x[1:] if isinstance(x, list) else []  # h_0 (and c_0), given as from:
        x = x[0] if isinstance(x, list) else x
        proj = a.values.get("proj_size", 0)
        if proj >= a.hidden_size:
            raise ShapeError(f"proj_size {proj} has to be smaller than hidden_size "
                             f"{a.hidden_size}", "proj_size")
        if a.dropout > 0 and a.num_layers == 1:
            a.warn(f"dropout {a.dropout} has no effect with num_layers 1 (dropout is applied "
                   f"between stacked layers)", "dropout")
        _check_states(a, states)
        _batch_first(a)
        directions = 2 if a.bidirectional else 1
        return (x[0], directions * (proj or a.hidden_size))

    return rule


def _check_states(a: Args, states: list[Shape]) -> None:
    """The initial state, h_0 (and an LSTM's c_0): torch's (num_layers · directions) × N ×
    hidden_size (h_0 of an LSTM with proj_size: proj_size), whatever batch_first says."""
    directions = 2 if a.bidirectional else 1
    for i, state in enumerate(states, start=1):
        name = ("h_0", "c_0")[i - 1]
        expected = _state_shape(name == "c_0")(a, ())
        if tuple(state) != expected:
            proj = a.values.get("proj_size", 0)
            width = (f"proj_size {proj}" if proj and name == "h_0"
                     else f"hidden_size {a.hidden_size}")
            raise ShapeError(
                f"the initial state {name} ({a.describe(i)}) should be "
                f"{expected[0]}×N×{expected[1]} (num_layers {a.num_layers} × {directions} "
                f"direction{'s' * (directions > 1)}, the batch, {width})",
                _differing_arg(a, state[0] != expected[0], width.partition(" ")[0]))
        if not a.batch_first:
            raise ShapeError(
                f"with batch_first false torch reads dimension 1, the sequence length, as the "
                f"batch, so the initial state {name} ({a.describe(i)}) would need that many "
                f"rows, not the batch's; write batch_first: true", "batch_first")


def _state_shape(cell: bool):
    """h_n (or an LSTM's c_n): num_layers × directions rows of hidden_size (h_n of an LSTM
    with proj_size: proj_size), the batch between them."""
    def shape(a: Args, x: Shape) -> Shape:
        directions = 2 if a.bidirectional else 1
        width = a.hidden_size if cell else (a.values.get("proj_size", 0) or a.hidden_size)
        return (a.num_layers * directions, width)

    return shape


def _differing_arg(a: Args, rows: bool, width: str) -> str | None:
    """The written argument a wrong initial state disagrees with, to point at."""
    names = ("num_layers", "bidirectional") if rows else (width,)
    return next((n for n in names if n in a.given), None)


def _rnn_params(kind: str):
    def count(a: Args, x: Shape | list[Shape]) -> int:
        gates, hidden = GATES[kind], a.hidden_size
        proj = a.values.get("proj_size", 0)
        out = proj or hidden
        directions = 2 if a.bidirectional else 1
        total = 0
        for index in range(a.num_layers):
            width_in = a.input_size if index == 0 else out * directions
            per_direction = gates * hidden * (width_in + out)
            if a.bias:
                per_direction += 2 * gates * hidden
            if proj:
                per_direction += proj * hidden
            total += directions * per_direction
        return total

    return count


def _rnn_macs(kind: str):
    def count(a: Args, x: Shape, y: Shape) -> int:
        # per step, layer and direction: the gates' input and hidden matmuls (and the
        # LSTM's projection), over the L steps of the sequence
        gates, hidden = GATES[kind], a.hidden_size
        proj = a.values.get("proj_size", 0)
        out = proj or hidden
        directions = 2 if a.bidirectional else 1
        per_step = 0
        for index in range(a.num_layers):
            width_in = a.input_size if index == 0 else out * directions
            per_step += directions * (gates * hidden * (width_in + out) + proj * hidden)
        return x[0] * per_step

    return count


def _register(kind: str) -> None:
    args = [Arg("input_size", Int(), infer=_features, noun="features"), Arg("hidden_size", Int()),
            Arg("num_layers", Int(), 1)]
    if kind == "RNN":
        args.append(Arg("nonlinearity", Enum("tanh", "relu"), "tanh"))
    args += [Arg("bias", Bool, True), Arg("batch_first", Bool, False),
             Arg("dropout", Probability, 0.0), Arg("bidirectional", Bool, False)]
    if kind == "LSTM":
        args.append(Arg("proj_size", Int(minimum=0), 0))
    # (output, state): the output flows on; the state (h_n, and c_n for an LSTM), layers ×
    # batch × hidden, is taken by name (from: lstm.h_n)
    lstm = kind == "LSTM"
    states = (Output("h_n", at=(1, 0) if lstm else (1,), shape=_state_shape(False),
                     batch_dim=1),)
    if lstm:
        states += (Output("c_n", at=(1, 1), shape=_state_shape(True), batch_dim=1),)
    # the initial state, torch's hx (an LSTM's (h_0, c_0)), optional: from: [x, enc.h_n]
    inputs = [Port("input", ranks=SEQUENCE, doc="the sequence"),
              Port("h_0", doc="the initial hidden state h_0", optional=True, param="hx",
                   state=True)]
    if lstm:
        inputs.append(Port("c_0", doc="the initial cell state c_0", optional=True,
                           param="hx", state=True))
    layer(kind, *args, family="recurrent", inputs=tuple(inputs), outputs=(Output(), *states),
          torch=Torch(f"torch.nn.{kind}", returns=("output", None)),
          draw=Draw(key_args=rnn_key_args),
          params=_rnn_params(kind), macs=_rnn_macs(kind))(_rnn_rule(kind))


for _kind in GATES:
    _register(_kind)


def _encoder_params(a: Args, x: Shape) -> int:
    e, f = a.d_model, a.dim_feedforward
    b = 1 if a.bias else 0
    attention = 4 * e * e + b * 4 * e  # in_proj (3E×E) and out_proj (E×E), with biases
    feed_forward = 2 * e * f + b * (f + e)
    norms = 2 * (e + b * e)
    return attention + feed_forward + norms


def _encoder_macs(a: Args, x: Shape, y: Shape) -> int:
    length, e, f = x[0], a.d_model, a.dim_feedforward
    projections = length * (4 * e * e + 2 * e * f)  # in_proj, out_proj, the feed-forward
    # Q·Kᵀ and the weights·V over all heads; over L steps of each sample, as the spec
    # means it (with batch_first false, warned about, torch attends across the batch)
    attention = 2 * length * length * e
    return projections + attention


def _read_encoder(m) -> dict | str:
    """The arguments an nn.TransformerEncoderLayer (or TransformerDecoderLayer) was made
    with, read off its children (it keeps none of them under its own name)."""
    # torch is loaded (m is a torch module); the check path never gets here, nor imports it
    functional = sys.modules["torch.nn.functional"]
    activation = getattr(m, "activation", None)
    name = {functional.relu: "relu", functional.gelu: "gelu"}.get(activation)
    if name is None:
        return "its activation is not 'relu' or 'gelu'"
    return {"d_model": m.self_attn.embed_dim, "nhead": m.self_attn.num_heads,
            "dim_feedforward": m.linear1.out_features, "dropout": m.dropout.p,
            "activation": name, "layer_norm_eps": m.norm1.eps,
            "batch_first": m.self_attn.batch_first, "norm_first": m.norm_first,
            "bias": m.linear1.bias is not None}


# torch.nn.TransformerEncoderLayer's and TransformerDecoderLayer's arguments
TRANSFORMER_ARGS = (
    Arg("d_model", Int(), infer=_features, noun="features"), Arg("nhead", Int()),
    Arg("dim_feedforward", Int(), 2048), Arg("dropout", Probability, 0.1),
    Arg("activation", Enum("relu", "gelu"), "relu"), Arg("layer_norm_eps", Float(), 1e-5),
    Arg("batch_first", Bool, False), Arg("norm_first", Bool, False), Arg("bias", Bool, True))


@layer("TransformerEncoderLayer", *TRANSFORMER_ARGS,
       family="recurrent", ranks=SEQUENCE, params=_encoder_params, macs=_encoder_macs,
       draw=Draw(key_args=encoder_key_args), read_module=_read_encoder)
def transformer_encoder_layer(a: Args, x: Shape) -> Shape:
    if a.d_model % a.nhead:
        raise ShapeError(f"d_model {a.d_model} is not divisible by nhead {a.nhead}", "nhead")
    _batch_first(a)
    return x


def _decoder_params(a: Args, shapes: list[Shape]) -> int:
    e, f = a.d_model, a.dim_feedforward
    b = 1 if a.bias else 0
    attention = 4 * e * e + b * 4 * e  # in_proj (3E×E) and out_proj (E×E), with biases
    feed_forward = 2 * e * f + b * (f + e)
    norms = 3 * (e + b * e)
    return 2 * attention + feed_forward + norms  # self- and cross-attention


def _decoder_macs(a: Args, shapes: list[Shape], y: Shape) -> int:
    if not isinstance(shapes, list) or len(shapes) < 2:
        return 0
    t, s, e, f = shapes[0][0], shapes[1][0], a.d_model, a.dim_feedforward
    self_attention = 4 * t * e * e + 2 * t * t * e  # projections, Q·Kᵀ and weights·V
    # the query and output projections of tgt, key and value projections of memory
    cross_attention = 2 * t * e * e + 2 * s * e * e + 2 * t * s * e
    return self_attention + cross_attention + 2 * t * e * f


# forward(tgt, memory, ...): no masks, so no causal flags (torch's need a mask)
_DECODER_FORWARD = (("tgt_mask", None), ("memory_mask", None), ("tgt_key_padding_mask", None),
                    ("memory_key_padding_mask", None), ("tgt_is_causal", False),
                    ("memory_is_causal", False))


@layer("TransformerDecoderLayer", *TRANSFORMER_ARGS, family="recurrent",
       inputs=(Port("tgt", ranks=SEQUENCE, doc="the target sequence tgt"),
               Port("memory", ranks=SEQUENCE, doc="the encoder's output memory")),
       torch=Torch("torch.nn.TransformerDecoderLayer", forward_params=_DECODER_FORWARD),
       params=_decoder_params, macs=_decoder_macs, draw=Draw(key_args=encoder_key_args),
       read_module=_read_encoder)
def transformer_decoder_layer(a: Args, shapes: list[Shape]) -> Shape:
    """torch.nn.TransformerDecoderLayer(tgt, memory): self-attention over tgt, attention of
    it over memory, a feed-forward; the output has tgt's shape.  No masks are passed."""
    tgt, memory = shapes
    if a.d_model % a.nhead:
        raise ShapeError(f"d_model {a.d_model} is not divisible by nhead {a.nhead}", "nhead")
    if memory[1] != a.d_model:
        raise ShapeError(f"the memory ({a.describe(1)}) has {memory[1]} features, but d_model "
                         f"is {a.d_model}", "d_model" if "d_model" in a.given else None)
    if not a.batch_first and tgt[0] != memory[0]:
        raise ShapeError(f"with batch_first false torch reads the sequence dimension as the "
                         f"batch, and tgt's length {tgt[0]} differs from memory's "
                         f"{memory[0]}; write batch_first: true", "batch_first")
    _batch_first(a)
    return tgt


CELL_GATES = {"RNNCell": 1, "GRUCell": 3, "LSTMCell": 4}
FEATURES = {1: "1-d (features)"}
HIDDEN = {1: "1-d (hidden_size)"}


def _cell_params(kind: str):
    def count(a: Args, shapes: list[Shape]) -> int:
        gates, hidden = CELL_GATES[kind], a.hidden_size
        return gates * hidden * (a.input_size + hidden) + (2 * gates * hidden if a.bias else 0)

    return count


def _cell_macs(kind: str):
    def count(a: Args, shapes: list[Shape], y: Shape) -> int:
        # the gates' input and hidden matmuls (the latter on zeros when no state is given)
        return CELL_GATES[kind] * a.hidden_size * (a.input_size + a.hidden_size)

    return count


def _cell_rule(kind: str):
    def rule(a: Args, shapes: list[Shape]) -> Shape:
        for i, shape in enumerate(shapes[1:], start=1):
            if shape[0] != a.hidden_size:
                raise ShapeError(f"the state {'hc'[i - 1]} ({a.describe(i)}) has {shape[0]} "
                                 f"features, but hidden_size is {a.hidden_size}", "hidden_size")
        return (a.hidden_size,)

    state = "(h, c)" if kind == "LSTMCell" else "h"
    rule.__doc__ = (f"torch.nn.{kind}(input, {'hx' if kind != 'LSTMCell' else '(h, c)'}): one "
                    f"step; the new {state} (zeros when not given), of which h flows on.")
    return rule


def _register_cell(kind: str) -> None:
    args = [Arg("input_size", Int(), infer=_features, noun="features"),
            Arg("hidden_size", Int()), Arg("bias", Bool, True)]
    inputs = [Port("input", ranks=FEATURES, doc="the input")]
    outputs = [Output("h")]
    if kind == "RNNCell":
        args.append(Arg("nonlinearity", Enum("tanh", "relu"), "tanh"))
    if kind == "LSTMCell":
        inputs += [Port("h", ranks=HIDDEN, doc="the hidden state h", optional=True, param="hx"),
                   Port("c", ranks=HIDDEN, doc="the cell state c", optional=True, param="hx")]
        outputs.append(Output("c"))
    else:
        inputs.append(Port("h", ranks=HIDDEN, doc="the hidden state h", optional=True,
                           param="hx"))
    returns = ("h", "c") if kind == "LSTMCell" else None
    layer(kind, *args, family="recurrent", inputs=tuple(inputs), outputs=tuple(outputs),
          flows="h", torch=Torch(f"torch.nn.{kind}", returns=returns),
          draw=Draw(key_args=rnn_key_args), params=_cell_params(kind),
          macs=_cell_macs(kind))(_cell_rule(kind))


for _kind in CELL_GATES:
    _register_cell(_kind)


# A cell stepped over the time dimension with one set of weights, as the tutorials write
# it: for t in range(x.shape[1]): h = cell(x[:, t], h).  The class is netspec's: the
# built model runs this source (netspec.ops.torch_side) and generated code writes it, a
# subclass of the cell, so its state_dict keys are the cell's (cell.weight_ih, ...).
LOOP_SOURCE = '''class {kind}Loop(nn.{kind}):
    """nn.{kind} stepped over dim 1 (time) of a batch-first N×L×features input with one set
    of weights: the state starts at the one given (or at zeros) and each step's h is
    stacked along time.  Returns (the N×L×hidden_size outputs, the last {state})."""

    def forward(
        self, x: torch.Tensor, hx: {hx_type} = None
    ) -> tuple[torch.Tensor, {hx_type_given}]:
        if hx is None:
            {start}
        steps = []
        for t in range(x.shape[1]):
            hx = super().forward(x[:, t], hx)
            steps.append({h})
        return torch.stack(steps, dim=1), hx'''


def _loop_source(kind: str) -> str:
    lstm = kind == "LSTMCell"
    pair = "tuple[torch.Tensor, torch.Tensor]"
    zeros = "x.new_zeros(x.shape[0], self.hidden_size)"
    given = pair if lstm else "torch.Tensor"
    return LOOP_SOURCE.format(
        kind=kind, state="(h, c)" if lstm else "h", hx_type=f"{given} | None", hx_type_given=given,
        start=f"zeros = {zeros}\n            hx = (zeros, zeros)" if lstm else f"hx = {zeros}",
        h="hx[0]" if lstm else "hx")


def _loop_rule(kind: str):
    step = _cell_rule(kind)

    def rule(a: Args, shapes: list[Shape]) -> Shape:
        return (shapes[0][0], *step(a, [shapes[0][1:], *shapes[1:]]))

    state = "(h, c)" if kind == "LSTMCell" else "h"
    rule.__doc__ = (f"torch.nn.{kind} stepped over the L steps of an L×features sample, one "
                    f"set of weights; its {state} starts at the one given (zeros when not); "
                    f"the outputs, L×hidden_size, flow on; the last {state} as .h"
                    f"{' and .c' if kind == 'LSTMCell' else ''}.")
    return rule


def _loop_macs(kind: str):
    cell = _cell_macs(kind)
    return lambda a, shapes, y: shapes[0][0] * cell(a, shapes, y)  # one cell per step


def _last_state(a: Args, x: Shape) -> Shape:
    """The loop's last h (or c): hidden_size per sample."""
    return (a.hidden_size,)


def _register_loop(kind: str) -> None:
    args = [Arg("input_size", Int(), infer=_features, noun="features"),
            Arg("hidden_size", Int()), Arg("bias", Bool, True)]
    if kind == "RNNCell":
        args.append(Arg("nonlinearity", Enum("tanh", "relu"), "tanh"))
    lstm = kind == "LSTMCell"
    inputs = [Port("input", ranks=SEQUENCE, doc="the sequence"),
              Port("h", ranks=HIDDEN, doc="the initial hidden state h", optional=True,
                   param="hx")]
    outputs = [Output(), Output("h", at=(1, 0) if lstm else (1,), shape=_last_state)]
    if lstm:
        inputs.append(Port("c", ranks=HIDDEN, doc="the initial cell state c", optional=True,
                           param="hx"))
        outputs.append(Output("c", at=(1, 1), shape=_last_state))
    name = f"{kind}Loop"
    layer(name, *args, family="recurrent", inputs=tuple(inputs), outputs=tuple(outputs),
          torch=Torch(f"netspec.ops.torch_side.{name}", returns=("output", None)),
          code=Code(call=name, helper=_loop_source(kind)),
          draw=Draw(key_args=rnn_key_args, loop="h, each step"),
          params=_cell_params(kind), macs=_loop_macs(kind))(_loop_rule(kind))


for _kind in CELL_GATES:
    _register_loop(_kind)

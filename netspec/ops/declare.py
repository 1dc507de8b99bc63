"""The vocabulary every layer file uses: argument types, the layer record, shape helpers.

A layer type is declared once, in one family file, as a ``LayerType``: its PyTorch
positional argument order with a type for each argument (which becomes its JSON
Schema), its shape rule, its parameter count, and where they are not zero its
multiply-accumulates and buffers.  The torch constructor is
``torch.nn.<name>`` unless the record names another (see ``netspec.build``).
Nothing here imports torch.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Shape = tuple[int, ...]

MAX_DIM = 2**31 - 1  # larger sizes are absurd for one dimension of a layer
REQUIRED = object()  # marks an argument that has no default
TENSOR_INDEX = object()  # stands for the index tensor in a subscript (LayerType.tensor_index)


class ShapeError(Exception):
    """A layer refuses its input or its arguments; ``arg`` names the argument to point at."""

    def __init__(self, message: str, arg: str | None = None):
        super().__init__(message)
        self.message = message
        self.arg = arg


# ---------------------------------------------------------------- argument types


@dataclass(frozen=True)
class ArgType:
    """A JSON Schema fragment plus how a YAML value becomes a torch argument."""

    schema: dict
    describe: str
    tuple_for_torch: bool = False  # YAML lists become tuples, as torch's own defaults are

    def to_torch(self, value: Any) -> Any:
        if self.tuple_for_torch and isinstance(value, list):
            return tuple(value)
        return value

    def nullable(self) -> ArgType:
        schema = dict(self.schema)
        if "type" in schema:  # an enum alone has none: null joins its values
            types = schema["type"]
            schema["type"] = ([types] if isinstance(types, str) else list(types)) + ["null"]
        if "enum" in schema:
            schema["enum"] = list(schema["enum"]) + [None]
        return ArgType(schema, self.describe + " or null", self.tuple_for_torch)


def Int(minimum: int | None = 1, maximum: int = MAX_DIM) -> ArgType:
    schema: dict = {"type": "integer", "maximum": maximum}
    if minimum is not None:
        schema["minimum"] = minimum
    what = {1: "a positive integer", 0: "a non-negative integer"}.get(minimum, "an integer")
    return ArgType(schema, what)


def Float(minimum: float | None = None, maximum: float | None = None) -> ArgType:
    schema: dict = {"type": "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return ArgType(schema, "a number")


def Size(n: int, minimum: int = 1) -> ArgType:
    """An int, or a list of exactly ``n`` ints (PyTorch's ``_pair``/``_triple`` arguments)."""
    item = {"type": "integer", "minimum": minimum, "maximum": MAX_DIM}
    schema = {
        "type": ["integer", "array"],
        **{k: v for k, v in item.items() if k != "type"},
        "items": item,
        "minItems": n,
        "maxItems": n,
    }
    what = "an integer" if n == 1 else f"an integer or a list of {n} integers"
    return ArgType(schema, what, tuple_for_torch=True)


def IntList(minimum: int = 1) -> ArgType:
    """An int or a non-empty list of ints of any length (normalized_shape, unflattened_size)."""
    item = {"type": "integer", "minimum": minimum, "maximum": MAX_DIM}
    schema = {
        "type": ["integer", "array"],
        "minimum": minimum,
        "maximum": MAX_DIM,
        "items": item,
        "minItems": 1,
    }
    return ArgType(schema, "an integer or a list of integers", tuple_for_torch=True)


def Enum(*values: Any) -> ArgType:
    return ArgType({"enum": list(values)}, "one of " + ", ".join(repr(v) for v in values))


Bool = ArgType({"type": "boolean"}, "true or false")
# a constant operand (torch's Number): YAML 2 stays an int and 2.0 a float, as torch's type
# promotion tells them apart
Number = ArgType({"type": "number"}, "a number")
Dim = ArgType({"type": "integer", "minimum": -64, "maximum": 64}, "a dimension index")
Probability = ArgType({"type": "number", "minimum": 0, "maximum": 1}, "a probability in [0, 1]")


def ConvPadding(n: int) -> ArgType:
    """Non-negative int, list of ``n`` ints, or 'same'/'valid' (a string)."""
    schema = Size(n, minimum=0).schema | {
        "type": ["integer", "array", "string"],
        "pattern": "^(same|valid)$",
    }
    return ArgType(
        schema, f"an integer, a list of {n} integers, 'same' or 'valid'", tuple_for_torch=True
    )


# ---------------------------------------------------------------- arguments and layers


@dataclass(frozen=True)
class Arg:
    name: str
    type: ArgType
    default: Any = REQUIRED
    # Inferable arguments: how to read the value off the incoming sample shape,
    # and the noun used when a written value disagrees ("channels", "features").
    infer: Callable[[Shape], Any] | None = None
    noun: str = ""
    keyword_only: bool = False  # after PyTorch's '*': may not be given positionally
    # PyTorch's *dims: a list written for the layer is this one argument's value
    # (Permute: [0, 2, 1] as x.permute(0, 2, 1)), not a list of positional arguments
    varargs: bool = False
    # When PyTorch only warns about a written value that disagrees with the input
    # (InstanceNorm without affine ignores num_features), say so: a warning, not an error.
    lenient_if: Callable[[Args], bool] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and self.infer is None


@dataclass(frozen=True)
class Port:
    """One tensor input of an op."""

    name: str = "input"
    dtype: str = "float"  # "float", "int" (indices), or "any"
    # Sample ranks (batch excluded) the port accepts, with the layout shown in errors;
    # None accepts any rank >= min_rank.
    ranks: dict[int, str] | None = None
    min_rank: int = 1
    variadic: int = 0  # > 0: the port takes that many tensors or more (Concat: 2)
    doc: str = ""  # what the input is, for arity messages ("what to crop")
    # int input: the argument that bounds its values (export draws an example below it)
    index_bound: str | None = None
    # an optional port: when not given it takes the input of this earlier port
    # (MultiheadAttention's key defaults to the query, its value to the key)
    default: str | None = None
    # an optional port that torch's call goes without when it is not given (a cell's
    # state, which torch then starts at zeros; Interpolate's like, sdpa's attn_mask)
    optional: bool = False
    # the parameter of torch's forward the port is passed as, where it is not the port's
    # name (RNNCell's h is hx); ports sharing one are passed together as a tuple, in order,
    # and given whole or not at all (LSTMCell's hx = (h, c))
    param: str | None = None

    @property
    def required(self) -> bool:
        return self.default is None and not self.optional
    # the argument that may hold a number in place of this port's tensor, as torch's
    # `other: Tensor | Number` (Mul with other: 2 takes one tensor: x * 2)
    scalar: str | None = None
    # the op takes not this tensor but its spatial size (dims 2..), read at run time, as
    # the keyword argument named here (F.interpolate(x, size=like.shape[2:]))
    size_of: str | None = None
    # how the op reads a tensor whose batch is dim 1 (a recurrent state, h_n):
    # state_rule(a, x) -> the output sample shape (the batch back at dim 0), x being the
    # state's shape without its batch; None: such a tensor is refused here
    state_rule: Callable[[Args, Shape], Shape] | None = None
    # how the op reads a tensor without a batch dimension (a Parameter): whole_rule(a, x) ->
    # the whole output shape, which has none either (a layer scale's gamma.reshape(1, -1, 1,
    # 1) before x * it); None: such a tensor is refused here unless the op broadcasts it
    whole_rule: Callable[[Args, Shape], Shape] | None = None
    # the op's arguments that read h_n[i], element i of a state's dim 0 (the layers): the
    # importer writes h_n[-1] as this op
    state_item: Callable[[int], dict[str, Any]] | None = None
    # the op takes not this tensor but its batch size, read at run time, as its positional
    # call argument of this index (Torch.arguments' value there is replaced): the batch a
    # tensor without one (a Parameter) is repeated over, class_token.expand(x.shape[0], -1,
    # -1).  The other ports then take a tensor without a batch dimension whose dim 0 (of
    # size 1) becomes the batch
    batch_size_at: int | None = None
    # the port takes a tensor without a batch dimension (a Parameter, a buffer) whole, and
    # not a batch (a relative position bias made from its table and index)
    whole: bool = False
    # the port takes a recurrent state, layers × batch × hidden (its batch at dim 1: an
    # RNN's h_0, given as from: [x, encoder.h_n]); an op whose ports after the first are
    # all states takes one input where none is given (an RNN in a chain)
    state: bool = False


@dataclass(frozen=True)
class Output:
    """One tensor an op produces."""

    name: str = "output"
    dtype: str | None = None  # None: the input's (int input -> float32 unless the port is "any")
    # False: the tensor has no batch dimension (a Parameter's); its shape is the whole shape
    batched: bool = True
    # An output besides the one that flows on (an LSTM's h_n), taken as from: lstm.h_n:
    # where it is in the tuple torch returns (h_n of an LSTM: (1, 0), in (output, (h_n,
    # c_n))), and its shape from the arguments and the input sample
    at: tuple[int, ...] = ()
    shape: Callable[[Args, Shape], Shape] | None = None
    # its batch is dim 1, not 0 (a recurrent state: layers × batch × hidden); its shape
    # is the whole shape without that dim
    batch_dim: int = 0


@dataclass(frozen=True)
class InputSize:
    """A call argument read from the input tensor when the model runs, ``x.shape[dim]``: a
    reshape keeps the incoming batch and length, so the built model and the generated code
    run at other input sizes, as the torch code they stand for does."""

    dim: int


@dataclass(frozen=True)
class StandIn:
    """A step of a library's module that is a module op although no module of its own: the
    method ``method`` of the modules of class ``host`` (its dotted path), whose state is the
    host's child ``child``, of class ``child_class`` (timm's SwinTransformerBlock._attn, on
    windows it folds into the batch, with the state of its child attn, a WindowAttention).
    The importer reads a call of the method as the op's entry, named as the child (so its
    state_dict keys are the child's), its arguments read by the op's read_module from the
    host."""

    host: str
    method: str
    child: str
    child_class: str


@dataclass(frozen=True)
class Torch:
    """What the op is in torch (read by netspec.ops.torch_side, which imports torch)."""

    target: str  # "torch.nn.Conv2d", "torch.cat", "operator.add"
    module: bool = True  # construct target(**args) once and call it; else call target
    inputs: str = "args"  # function ops: "args" f(a, b), "list" f([a, b]), "fold" f(f(a, b), c)
    call_args: tuple[str, ...] = ()  # op arguments passed after the inputs, as keywords
    # op arguments passed by name only where they differ from their default, in build as in
    # generated code (torch.div(a, b, rounding_mode="floor"); a / b without it)
    keywords: tuple[str, ...] = ()
    inplace: str | None = None  # fold: into input 0 when nothing else holds it (out += x)
    # The output is a fresh tensor autograd does not save for backward: an in-place fold
    # that is its only user may accumulate into it (torchvision's `out += identity`).
    owns_output: bool = False
    # a op b equals b op a: the importer reads 2 * x as x * 2
    commutative: bool = False
    # elementwise over broadcast shapes though not a fold (torch.div, torch.pow): a tensor
    # without a batch dimension (a Parameter) may meet a batch, as in the fold ops
    broadcasts: bool = False
    # The module returns a tuple: element i is output returns[i] (None: dropped).
    returns: tuple[str | None, ...] | None = None
    # A module taking several inputs: the parameters of its forward after the input ports,
    # with torch's defaults.  The importer takes a call only with these defaults, except
    # for those in ``free_params``, which change only outputs that do not flow on
    # (MultiheadAttention's need_weights: whether attn_weights is computed).
    forward_params: tuple[tuple[str, Any], ...] = ()
    free_params: tuple[str, ...] = ()
    # Free parameters the built model and generated code pass in every call: values that
    # skip work on outputs no spec takes (MultiheadAttention's need_weights=False: no
    # attention weights computed and averaged, and torch's fused fast path in eval, as
    # torchvision's EncoderBlock calls it)
    call_with: tuple[tuple[str, Any], ...] = ()
    # A learnable tensor (nn.Parameter) registered on the module that holds the entry and
    # read in forward as self.<name>; made by torch_side.make_parameter from the arguments.
    parameter: bool = False
    # with parameter: a buffer (register_buffer, state that is not learnt), made by the
    # function ``target`` from the op's arguments (a relative position index)
    buffer: bool = False
    # with buffer: the argument saying whether the buffer is in the state_dict
    # (register_buffer's persistent); None: it always is
    persistent: str | None = None
    # A Tensor method (target "torch.Tensor.reshape"): built as a call_method, x.reshape(...)
    method: bool = False
    # Function ops whose arguments after the input are not call_args as written:
    # arguments(values, x) -> positional arguments, from the op's argument values and the
    # checked sample shape x (batch excluded); they may hold InputSize (read at run time),
    # slices and Ellipsis (the index of operator.getitem)
    arguments: Callable[[dict[str, Any], Shape], tuple] | None = None
    # A module op standing for a method of another library's module (StandIn)
    stands_for: StandIn | None = None


_TORCH_SIDE = Path(__file__).with_name("torch_side.py")
_TOP_LEVEL = re.compile(r"\n(?=[A-Za-z_@#])")  # a line that starts a statement or comment


@functools.cache
def _torch_side_text() -> str:
    return _TORCH_SIDE.read_text(encoding="utf-8")


def torch_side_source(*names: str) -> str:
    """The source of netspec/ops/torch_side.py's functions ``names`` (with their decorators;
    the one a built model calls and those it calls), read from the file (ops never import
    torch): a generated file defines them with that very text (Code.helper), so the two
    cannot drift apart."""
    text = _torch_side_text()
    sources = []
    for name in names:
        start = text.index(f"\ndef {name}(") + 1
        end = _TOP_LEVEL.search(text, start)
        while text.rfind("\n", 0, start - 1) >= 0 and \
                text[text.rfind("\n", 0, start - 1) + 1] == "@":  # its decorator lines
            start = text.rfind("\n", 0, start - 1) + 1
        sources.append(text[start:end.start() if end else len(text)].rstrip())
    return "\n\n\n".join(sources)


@dataclass(frozen=True)
class Code:
    """How generated code writes a function op."""

    call: str | None = None  # the function's name in the generated file
    infix: str | None = None  # written "a + b" (where no Torch.keywords argument is written)
    # source of the functions and classes the generated file defines once; definitions
    # apart by two blank lines are each written once among all the file's ops
    helper: str | None = None
    # a Parameter: its arguments -> the expression that makes the tensor
    # ("torch.zeros((1, 1, 768))"), which generated code wraps in nn.Parameter
    tensor: Callable[[dict[str, Any]], str] | None = None
    method: str | None = None  # written as the input's method: x.reshape(...)
    subscript: bool = False  # written as an index of the input: x[:, 0]
    # the attribute name generated code gives an entry the spec leaves unnamed, numbered
    # when the network has several (self.fc1, self.fc2), as the tutorials name them; None:
    # the op's name without its 1d/2d/3d, lowercased (Conv2d -> conv, ReLU -> relu)
    attribute: str | None = None


@dataclass(frozen=True)
class Draw:
    """How a diagram draws the op."""

    symbol: str | None = None  # a small circle with this text instead of a box
    abbrev: str | None = None  # its name in fused boxes ("BN")
    # "weighted" (the main layer of a fused box), "follower" (fuses after one), or None
    fuse: str | None = None
    # the arguments that tell two of its boxes apart, in a few words; None: the written
    # non-default arguments
    key_args: Callable[[dict[str, Any]], str] | None = None
    # the box gets an edge back to itself with this label: the op runs step after step,
    # feeding itself its state (a cell stepped over time)
    loop: str | None = None


@dataclass(frozen=True)
class FxCall:
    """One torch.fx spelling of the op: a call_function or call_method of ``name``."""

    name: str
    # the parameters after the tensors with torch's defaults; those that are not op
    # arguments must keep their defaults (IGNORED ones aside)
    params: tuple[tuple[str, Any], ...] = ()
    sets: tuple[tuple[str, Any], ...] = ()  # values the spelling implies: relu_ -> inplace
    # a function outside torch (torchvision.ops.stochastic_depth): the module that defines
    # it; the importer records calls of it instead of tracing through them
    module: str | None = None
    # a spelling whose calls need reading (x.view(x.size(0), 8, -1)): match(args after the
    # tensor, kwargs, size_of) -> the op's arguments, (another op's name, its arguments) for
    # a call that is that op (x.view(x.size(0), -1) is a Flatten), or why it is no op.
    # size_of(v) is the dim of the input whose size v reads at run time (x.size(1),
    # x.shape[1]; the batch size of any tensor is 0), "computed" for another value computed
    # in forward (h * w), or None for a constant
    match: Callable[[list, dict, Callable[[Any], int | str | None]], dict | tuple | str] | None \
        = None
    # the call keeps its input's elements in order in another shape (x.reshape, x.view):
    # where ``match`` refuses its sizes (more than one computed in forward), the importer
    # may write it as entries of these two ops, one merging consecutive dims (Flatten's
    # start_dim, end_dim) and one splitting a dim (Unflatten's dim, unflattened_size), as
    # it is at every size the module runs at (netspec/importer/regroup.py)
    regroups: tuple[str, str] | None = None
    # the op a call of it is whose sizes read every size of one tensor, in order (timm's
    # Swin block: B, H, W, C = x.shape ... y.reshape(B, H, W, C)): an op taking the input
    # and that tensor (ReshapeAs), which runs at any size as the call does
    shaped_like: str | None = None
    # the call's arguments may be sizes computed in forward from its input's (F.pad(x, (0,
    # (7 - W % 7) % 7))): from_sizes(args after the tensor, kwargs, x, value_at) -> (the op
    # it is, its arguments), or why it is none; x is the input's sample shape in the model's
    # run at the spec's input, value_at(v, sizes) the value v would have for an input of
    # those sample sizes (None where the importer cannot tell)
    from_sizes: Callable[[list, dict, Shape, Callable[[Any, Shape], Any]], tuple | str] | None \
        = None


@dataclass
class LayerType:
    """An op: everything every stage needs about it, read generically."""

    name: str
    args: list[Arg]
    # rule(a, x) for one input; rule(a, shapes) (a list) for an op taking several
    rule: Callable[..., Shape]
    family: str
    params: Callable[[Args, Shape], int] = lambda a, x: 0
    # Multiply-accumulates per sample of the layer's matrix multiplications and
    # convolutions (what torch.utils.flop_counter.FlopCounterMode counts, halved), given the
    # arguments, the input and the output shape.  Elementwise work (activations, norms,
    # pooling, biases, merges) is 0, as FlopCounterMode has it.
    macs: Callable[[Args, Shape, Shape], int] = lambda a, x, y: 0
    # Buffers (state that is not a parameter: BatchNorm's running statistics), as
    # {dtype: element count}; they are what `netspec summary` calls non-trainable.
    buffers: Callable[[Args, Shape], dict[str, int]] = lambda a, x: {}
    # Its parameters by name with their shapes, where an entry may tie one to another's
    # (a language model's head to its embedding: tie: {weight: embed.weight}).
    weights: Callable[[Args], dict[str, Shape]] | None = None
    # Shorthand for the one input port of most ops (ignored when ``inputs`` is given).
    ranks: dict[int, str] | None = None
    min_rank: int = 1
    input_dtype: str = "float"
    output_dtype: str | None = None  # shorthand for outputs=(Output(dtype=...),)
    inputs: tuple[Port, ...] | None = None
    outputs: tuple[Output, ...] | None = None
    flows: str = "output"  # the output the next entry takes
    # The op gives a sequence of tensors (torch.split, torch.chunk): the rule returns one
    # shape per part, the parts are outputs "0", "1", ... (from: halves.0), and none flows
    # on by itself: an entry takes a part by name.
    parts: bool = False
    # Float dtypes other than float32 that the layer takes although its parameters are
    # float32 (PyTorch's CPU norms accept half precision; RMSNorm promotes any float).
    mixed_dtypes: tuple[str, ...] = ()
    # the output dtype from the input dtypes (a scalar operand in Args), raising ShapeError
    # where torch refuses the mix: torch's type promotion for an op taking several inputs,
    # its own rule for one (Sum of int32 is int64); None: the inputs share one dtype, which
    # flows on (for one input: the Output's dtype)
    dtype: Callable[[Args, list[str]], str] | None = None
    torch: Torch | None = None  # None: the module torch.nn.<name>
    code: Code = Code()
    draw: Draw = Draw()
    fx: tuple[FxCall, ...] = ()  # call_module of the torch class is implied for module ops
    origin: str | None = None  # how messages describe an output that differs: "flattened"
    # For a module op whose torch module does not keep its arguments as attributes of the
    # same names: read_module(module) -> the arguments it was made with, or why they cannot
    # be written (the importer reads the others attribute by attribute)
    read_module: Callable[[Any], dict[str, Any] | str] | None = None
    # For a buffer op: read_buffer(values, persistent) -> the arguments that make a module's
    # buffer of these contents (nested lists), or None where they make no such buffer; the
    # importer writes a buffer its forward reads as this op's entry
    read_buffer: Callable[[Any, bool], dict[str, Any] | None] | None = None
    # For an op taking a tensor and an index tensor: tensor_index(subscript, values) -> its
    # arguments where x[subscript] is the op (TENSOR_INDEX standing in the subscript for the
    # index tensor, whose contents are ``values``, nested lists), else None
    tensor_index: Callable[[tuple, Any], dict[str, Any] | None] | None = None
    # For an op that library code writes as a chain of calls (timm's relative position bias,
    # table[index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)):
    # read_chain(node) -> (the table's fx node, the node whose flattening indexes it, the
    # chain's nodes from ``node`` to its last, the shape the index must have, the size the
    # table's last dim must have or -1) where the
    # chain that starts at fx node ``node`` computes the op's function of the table and an
    # index buffer, else None.  The importer writes it as the op, its arguments read off
    # the buffer (LayerType.read_buffer of the op that makes it)
    read_chain: Callable[[Any], tuple | None] | None = None
    verb: str | None = None  # what the op does, in messages: "adds"
    doc: str = ""
    arg_by_name: dict[str, Arg] = field(init=False)

    def __post_init__(self):
        self.arg_by_name = {a.name: a for a in self.args}
        if self.inputs is None:
            self.inputs = (Port(dtype=self.input_dtype, ranks=self.ranks,
                                min_rank=self.min_rank),)
        elif not self.inputs:  # takes no input (a Parameter)
            pass
        else:  # the shorthand mirrors port 0, which single-input checks read
            first = self.inputs[0]
            self.input_dtype, self.ranks, self.min_rank = first.dtype, first.ranks, first.min_rank
        if self.outputs is None:
            self.outputs = (Output(dtype=self.output_dtype),)
        if self.torch is None:
            self.torch = Torch(f"torch.nn.{self.name}")
        names = [o.name for o in self.outputs]
        if self.flows not in names:
            raise ValueError(f"{self.name}: flows names no output: {self.flows!r}")
        if self.torch.returns is not None and not set(self.torch.returns) - {None} <= set(names):
            raise ValueError(f"{self.name}: returns names an output it does not declare")
        self._check_ports()
        if any(a.varargs for a in self.positional[1:]):
            raise ValueError(f"{self.name}: only the first positional argument may be varargs")
        if not set(self.torch.free_params) <= {k for k, _ in self.torch.forward_params}:
            raise ValueError(f"{self.name}: free_params names no forward parameter")
        if not {k for k, _ in self.torch.call_with} <= set(self.torch.free_params):
            raise ValueError(f"{self.name}: call_with names no free forward parameter")
        if self.torch.persistent is not None and (
                not self.torch.buffer or self.torch.persistent not in self.arg_by_name):
            raise ValueError(f"{self.name}: persistent names no argument of a buffer")
        named = {*self.torch.call_args, *self.torch.keywords,
                 *(p.scalar for p in self.inputs if p.scalar),
                 *(p.size_of for p in self.inputs if p.size_of)}
        if not named <= set(self.arg_by_name):
            raise ValueError(f"{self.name}: call_args, keywords or a port names no argument")
        if self.torch.inputs not in ("args", "list", "fold"):
            raise ValueError(f"{self.name}: torch inputs {self.torch.inputs!r}")

    def _check_ports(self) -> None:
        ports = [p.name for p in self.inputs]
        if any(p.default is not None and p.default not in ports[:i]
               for i, p in enumerate(self.inputs)):
            raise ValueError(f"{self.name}: a port defaults to no earlier port")
        if any(not p.required and q.required
               for p, q in zip(self.inputs, self.inputs[1:], strict=False)):
            raise ValueError(f"{self.name}: optional ports come last")
        if any(p.variadic or p.scalar for p in self.inputs[:-1]):
            raise ValueError(f"{self.name}: only the last input port may be variadic or a "
                             "number")
        if any(p.batch_size_at is not None and (p.required or self.torch.arguments is None)
               for p in self.inputs):
            raise ValueError(f"{self.name}: a port giving its batch size is optional, and "
                             "replaces one of Torch.arguments")
        params = [p.param for p in self.inputs if p.param is not None]
        runs = [k for i, k in enumerate(params) if i == 0 or params[i - 1] != k]
        if len(runs) != len(set(runs)) or any(
                len({p.required for p in self.inputs if p.param == k}) > 1 for k in runs):
            raise ValueError(f"{self.name}: the ports passed as one parameter are adjacent, "
                             "all required or all optional")

    @property
    def positional(self) -> list[Arg]:
        return [a for a in self.args if not a.keyword_only]

    @property
    def list_arg(self) -> Arg | None:
        """The argument a list written for the layer is (PyTorch's *dims), if any."""
        positional = self.positional
        return positional[0] if positional and positional[0].varargs else None

    @property
    def takes_several(self) -> bool:
        """The op takes more than one tensor: written with from: [a, b].  (An op whose other
        ports are states, an RNN's h_0, takes one unless they are given: ``takes_state``.)"""
        if self.takes_state:
            return False
        return len(self.inputs) > 1 or (bool(self.inputs) and self.inputs[0].variadic > 0)

    @property
    def takes_state(self) -> bool:
        """The op's ports after the first are recurrent states it may be given (an RNN's
        initial state h_0: from: [x, encoder.h_n])."""
        return len(self.inputs) > 1 and all(p.state for p in self.inputs[1:])

    @property
    def broadcasts(self) -> bool:
        """Elementwise over broadcast shapes (the fold ops: Add, Mul, Sub; Div, Pow): a
        tensor without a batch dimension (a Parameter) may meet a batch here, as torch
        broadcasts it."""
        return self.torch.inputs == "fold" or self.torch.broadcasts

    def batch_port(self, count: int) -> int | None:
        """The port whose batch size the op takes (Port.batch_size_at) when it is among the
        ``count`` inputs given, else None."""
        return next((i for i, p in enumerate(self.inputs[:count])
                     if p.batch_size_at is not None), None)

    @property
    def takes_whole(self) -> bool:
        """The op takes tensors without a batch (Parameters, buffers) whole: Port.whole."""
        return bool(self.inputs) and all(p.whole for p in self.inputs)

    @property
    def takes_none(self) -> bool:
        """The op takes no tensor: a Parameter."""
        return not self.inputs

    @property
    def min_inputs(self) -> int:
        if not self.inputs:
            return 0
        last = self.inputs[-1]
        required = sum(p.required for p in self.inputs[:-1])
        return required + (max(last.variadic, 1) if last.required else 0)

    def scalar_given(self, given: dict[str, Any]) -> str | None:
        """The argument that holds a number in place of the last port's tensor, where it is
        given (``Mul: {other: 2}``); None: every port takes a tensor."""
        name = self.inputs[-1].scalar if self.inputs else None
        return name if name is not None and given.get(name) is not None else None

    def input_range(self, given: dict[str, Any]) -> tuple[int, int | None]:
        """How many tensors the op takes with these arguments: (least, most; None: any)."""
        if self.scalar_given(given):  # the number stands in for the last tensor
            return len(self.inputs) - 1 or 1, len(self.inputs) - 1 or 1
        return self.min_inputs, self.max_inputs

    def fill_inputs(self, given: list) -> list:
        """The inputs of every port: ``given`` for the first ports, then for each optional
        port not given, the input of the port it defaults to."""
        items = list(given)
        names = [p.name for p in self.inputs]
        for port in self.inputs[len(items):]:
            if port.default is None:  # optional without a default: nothing is passed
                break
            items.append(items[names.index(port.default)])
        return items

    def given_inputs(self, items: list) -> list:
        """The inputs to write: ``items`` (one for every port) without the trailing
        ones that ``fill_inputs`` would fill in the same (attention's value when it is the key,
        its key when it is the query)."""
        items = list(items)
        names = [p.name for p in self.inputs]
        while len(items) > 1 and len(items) <= len(self.inputs):
            default = self.inputs[len(items) - 1].default
            if default is None or items[-1] != items[names.index(default)]:
                break
            items.pop()
        return items

    def call_inputs(self, given: list) -> list:
        """The positional arguments of torch's call of the op on ``given``: ports that
        default to another filled in, ports passed as one parameter as a tuple (LSTMCell's
        (h, c))."""
        items = self.fill_inputs(given)
        if self.inputs[-1].variadic:
            return items
        return [group[0] if len(self.members(self.inputs[k])) == 1 else tuple(group)
                for k, group in self.grouped(items)]

    def grouped(self, items: list) -> list[tuple[int, list]]:
        """``items`` (one per port, in order) grouped as torch's forward takes them: (the
        index of the group's first port, its items)."""
        groups: list[tuple[int, list]] = []
        for i, item in enumerate(items):
            param = self.inputs[i].param
            if param is not None and i > 0 and self.inputs[i - 1].param == param:
                groups[-1][1].append(item)
            else:
                groups.append((i, [item]))
        return groups

    def members(self, port: Port) -> list[Port]:
        """The ports passed with ``port`` as one parameter (itself alone if none)."""
        if port.param is None:
            return [port]
        return [p for p in self.inputs if p.param == port.param]

    def split_param(self, count: int) -> str | None:
        """The parameter that ``count`` inputs would give only part of, or None."""
        inside = 0 < count < len(self.inputs)
        param = self.inputs[count - 1].param if inside else None
        return param if param is not None and self.inputs[count].param == param else None

    @property
    def max_inputs(self) -> int | None:
        return None if self.inputs and self.inputs[-1].variadic else len(self.inputs)

    def keyword_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """The Torch.keywords arguments that differ from their defaults, as torch takes them."""
        return {k: self.arg_by_name[k].type.to_torch(values[k]) for k in self.torch.keywords
                if values.get(k) != self.arg_by_name[k].default}

    @property
    def extra_outputs(self) -> list[Output]:
        """The outputs a later entry takes by name (from: lstm.h_n), besides the one that
        flows on."""
        return [o for o in self.outputs if o.shape is not None]

    def output_path(self, name: str) -> tuple[int, ...]:
        """Where output ``name`` is in what torch returns: a part of Split its index, an
        LSTM's h_n (1, 0)."""
        if self.parts:
            return (int(name),)
        return next(o.at for o in self.outputs if o.name == name)

    @property
    def flow_index(self) -> int:
        """Which element of the torch module's tuple flows on (when it returns one)."""
        returns = self.torch.returns
        return returns.index(self.flows) if returns is not None else 0

    @property
    def fuse(self) -> str | None:
        return self.draw.fuse if self.draw.fuse is not None else FAMILY_FUSE.get(self.family)


def _optional(port: Port) -> bool:
    return not port.required


# Default fuse roles: a fused box is a weighted layer with the norms and activations after it
FAMILY_FUSE = {"conv": "weighted", "linear": "weighted", "norm": "follower",
               "activation": "follower"}

Op = LayerType


class Args:
    """Resolved arguments of one layer: attribute access, defaults filled, YAML lists kept."""

    __slots__ = ("given", "sources", "values", "warnings")

    def __init__(self, values: dict[str, Any], given: set[str], sources: list[str] | None = None):
        self.values = values
        self.given = given
        self.sources = sources or []  # merge layers: "64×56×56 from 'bn2'" for each input
        self.warnings: list[tuple[str, str | None]] = []

    @classmethod
    def filled(cls, lt: LayerType, given: dict[str, Any], sources: list[str] | None = None
               ) -> Args:
        """``given`` over ``lt``'s defaults (required arguments not given stay missing)."""
        values = {a.name: a.default for a in lt.args if a.default is not REQUIRED}
        values.update(given)
        return cls(values, set(given), sources)

    def describe(self, i: int) -> str:
        """Input ``i`` of a merge layer, with its shape and where it comes from."""
        return self.sources[i] if i < len(self.sources) else f"input {i}"

    def warn(self, message: str, arg: str | None = None) -> None:
        """PyTorch accepts this but it is probably a mistake (or PyTorch warns too)."""
        self.warnings.append((message, arg))

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def tuple(self, name: str, n: int) -> tuple:
        """An int-or-list argument expanded to n values (PyTorch's _pair/_triple)."""
        v = self.values[name]
        return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


REGISTRY: dict[str, LayerType] = {}


def layer(name: str, *args: Arg, family: str, **options: Any) -> Callable:
    """Decorator: register ``rule`` as the shape rule of layer type ``name``."""

    def register(rule: Callable[[Args, Shape], Shape]) -> Callable:
        if name in REGISTRY:
            raise ValueError(f"layer type {name} registered twice")
        REGISTRY[name] = LayerType(
            name=name,
            args=list(args),
            rule=rule,
            family=family,
            doc=(rule.__doc__ or "").strip(),
            **options,
        )
        _check_spellings(REGISTRY[name])
        return rule

    return register


def spelled(spellings: dict[str, tuple[FxCall, ...]]) -> None:
    """Give registered ops their torch.fx spellings (the functions and methods the importer
    reads as them), declared beside them in their family file."""
    for name, calls in spellings.items():
        REGISTRY[name].fx = (*REGISTRY[name].fx, *calls)
        _check_spellings(REGISTRY[name])


def _check_spellings(op: LayerType) -> None:
    for call in op.fx:
        owner = SPELLINGS.setdefault(call.name, op.name)
        # one name may be torch's function and a library's copy of it (torchvision's
        # channel_shuffle), read alike: the same parameters, from different modules
        same = [c for c in op.fx if c.name == call.name]
        if owner != op.name or len({c.module for c in same}) < len(same) or \
                len({c.params for c in same}) > 1:
            raise ValueError(f"fx spelling {call.name} declared twice")


SPELLINGS: dict[str, str] = {}  # fx call_function/call_method name -> the op it is


# ---------------------------------------------------------------- shape helpers


def fmt(shape: Shape | list) -> str:
    """64×4×4; a scalar sample shows as 'a scalar'."""
    return "×".join(str(d) for d in shape) if len(shape) else "a scalar"


def numel(shape: Shape) -> int:
    return math.prod(shape)


def batched_dim(dim: int, sample_rank: int, what: str = "dim") -> int:
    """Map a PyTorch dim (which counts the batch) onto the sample shape; -1 is the batch.

    Raises like PyTorch for out-of-range dims."""
    rank = sample_rank + 1
    if not -rank <= dim < rank:
        raise ShapeError(
            f"{what} {dim} is out of range for a {rank}-d input (batch included); "
            f"expected a value in [{-rank}, {rank - 1}]",
            arg=what,
        )
    return (dim % rank) - 1


# ---------------------------------------------------------------- dtypes

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INT_DTYPES = ("int32", "int64")
DEFAULT_FLOAT = "float32"  # torch's default dtype: int / int, int * 0.5


def promote_types(a: str, b: str) -> str:
    """torch.promote_types over netspec's dtypes: a float beats an int, the wider of two
    ints or floats wins, and float16 with bfloat16 meet in float32."""
    if a == b:
        return a
    if (a in FLOAT_DTYPES) != (b in FLOAT_DTYPES):
        return a if a in FLOAT_DTYPES else b
    if a in INT_DTYPES:
        return "int64"
    if {a, b} == {"float16", "bfloat16"}:
        return "float32"
    return max(a, b, key=FLOAT_DTYPES.index)


def result_type(dtypes: list[str], scalar: Any = None) -> str:
    """torch.result_type of tensors (each with a batch dimension, so none is zero-dim) and an
    optional Python number: the number counts only where it is a float among int tensors."""
    out = dtypes[0]
    for d in dtypes[1:]:
        out = promote_types(out, d)
    if isinstance(scalar, float) and out in INT_DTYPES:
        return DEFAULT_FLOAT
    return out


def spatial_name(n: int) -> str:
    return {1: "L", 2: "H×W", 3: "D×H×W"}[n]

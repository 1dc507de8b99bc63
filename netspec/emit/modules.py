"""Torch modules that build puts around a network's graph where fx alone cannot say what
forward returns: outputs computed only in training (GoogLeNet's aux heads), a namedtuple.
Imported by build only, with torch."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from torch import fx, nn


class NetworkOutputs(nn.Module):
    """A network whose forward returns its outputs: as written in training; in eval without
    the training_only ones (a lone one as the tensor itself, as torchvision's GoogLeNet
    returns its logits).  The layers are this module's own children, so the state_dict is
    the graph's; the two graphs (training, eval) share them and are not children."""

    returns = "tuple"
    keys: tuple[str, ...] = ()
    eval_keys: tuple[str, ...] = ()

    @classmethod
    def wrap(cls, full: fx.GraphModule, evaluate: fx.GraphModule, name: str, returns: str,
             keys: list[str], eval_keys: list[str]) -> NetworkOutputs:
        namespace = {"returns": returns, "keys": tuple(keys), "eval_keys": tuple(eval_keys)}
        if returns == "namedtuple":
            namespace["Outputs"] = namedtuple(f"{name}Outputs", keys)
        inputs = [n for n in full.graph.nodes if n.op == "placeholder"]
        base = OneInputOutputs if len(inputs) == 1 else cls
        model = type(name, (base,), namespace)()
        for child, module in full.named_children():
            model.add_module(child, module)
        for key, parameter in full.named_parameters(recurse=False):
            model.register_parameter(key, parameter)
        # not children: the same layers, reached through the graphs
        object.__setattr__(model, "graphs", (full, evaluate))
        if model.lone_in_eval:
            output = next(n for n in evaluate.graph.nodes if n.op == "output")
            output.args = (output.args[0][0],)
            evaluate.recompile()
        return model

    def forward(self, *inputs: Any) -> Any:
        return self.run(inputs)

    def __prepare_scriptable__(self) -> fx.GraphModule:
        """torch.jit.script compiles the eval graph: TorchScript cannot call the two graphs
        this module holds outside its children."""
        return self.inference_module()

    def run(self, inputs: tuple) -> Any:
        full, evaluate = self.graphs
        # .forward, not __call__: torch.fx.symbolic_trace follows it into the layers, which
        # are this module's children (a graph called as a module is not one)
        if self.training:
            return self.pack(self.keys, full.forward(*inputs))
        values = evaluate.forward(*inputs)
        if self.lone_in_eval:  # the eval graph returns the tensor itself
            return values
        return self.pack(self.eval_keys, values)

    @property
    def lone_in_eval(self) -> bool:
        """In eval forward returns one tensor: the one output not training_only."""
        return len(self.eval_keys) == 1 and len(self.keys) > 1

    def inference_module(self) -> fx.GraphModule:
        """What export writes: the eval graph (a plain GraphModule that TorchScript can
        compile), which shares this module's layers."""
        return self.graphs[1]

    def pack(self, keys: tuple[str, ...], values: tuple) -> Any:
        if self.returns == "dict":
            return dict(zip(keys, values, strict=True))
        if self.returns == "namedtuple":
            return self.Outputs(**dict(zip(keys, values, strict=True))) \
                if keys == self.keys else tuple(values)
        return tuple(values)


class OneInputOutputs(NetworkOutputs):
    """A network of one input: forward(x), which torch.fx.symbolic_trace can follow."""

    def forward(self, x: Any) -> Any:
        return self.run((x,))

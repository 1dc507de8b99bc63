"""Shared checks for the one-input function ops (Reshape, Mean, Select, Pad, ...): the
verdict of netspec's whole pipeline on a one-entry spec against torch's on zeros, and the
build / codegen / import / summary / render round of a spec that uses an op."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from generated import build_weights_for
from torch import nn

import netspec
from netspec.emit.codegen import generate
from netspec.emit.render import to_dot
from netspec.emit.summary import summarize
from netspec.importer.fx import dumps, model_to_spec

BATCHES = (2, 3)  # two batch sizes: an op that reads the batch as a sample dim shows
DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32")


def one_entry_spec(op: str, args: Any, shape: tuple[int, ...], dtype: str = "float32") -> str:
    data = {"netspec": 1, "input": {"shape": list(shape), "dtype": dtype},
            "layers": [{op: args}]}
    return yaml.safe_dump(data, sort_keys=False)


def netspec_verdict(op: str, args: Any, shape: tuple[int, ...], dtype: str = "float32"
                    ) -> tuple[tuple | None, str | None, str]:
    """(output shape, output dtype, '') when netspec accepts, else (None, None, why)."""
    result = netspec.check(one_entry_spec(op, args, shape, dtype))
    if not result.ok:
        return None, None, "; ".join(d.message for d in result.errors)
    return result.output_shape, result.layers[0].output_dtype, ""


def torch_verdict(fn: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...],
                  dtype: str = "float32") -> tuple[tuple | None, str | None, str]:
    """fn on zeros at two batch sizes: (sample shape, dtype, '') when both runs keep the
    batch first and agree, else (None, None, why)."""
    outs = []
    for n in BATCHES:
        x = torch.zeros((n, *shape), dtype=getattr(torch, dtype))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = fn(x)
        except (RuntimeError, IndexError, ValueError, TypeError, NotImplementedError) as exc:
            return None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        if y.dim() == 0 or y.shape[0] != n:
            return None, None, f"batch {n} became {tuple(y.shape)}"
        if y.numel() == 0:
            return None, None, f"empty output {tuple(y.shape)}"
        outs.append((tuple(y.shape[1:]), str(y.dtype).removeprefix("torch.")))
    if outs[0] != outs[1]:
        return None, None, f"the sample shape depends on the batch: {outs}"
    return outs[0][0], outs[0][1], ""


def compare(op: str, args: Any, shape: tuple[int, ...], fn: Callable, dtype: str = "float32"
            ) -> tuple[tuple, tuple]:
    """Both verdicts, netspec's and torch's, for the caller to hold equal (or to explain)."""
    return netspec_verdict(op, args, shape, dtype), torch_verdict(fn, shape, dtype)


def load_generated(result: Any, tmp_path: Path, class_name: str) -> type:
    """The class-style generated code of a checked spec, written to a file and imported."""
    source = generate(result, "class")
    assert "netspec" not in source.split('"""')[-1], "generated code imports netspec"
    path = tmp_path / f"{class_name.lower()}_generated.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def build_and_codegen_agree(spec: str, reference: Callable, inputs: list[torch.Tensor],
                            tmp_path: Path, class_name: str) -> str:
    """netspec.build and the generated code compute ``reference`` on every input (the built
    model's weights loaded into the generated one); returns the generated source."""
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    built = netspec.build(result).eval()
    generated = load_generated(result, tmp_path, class_name)().eval()
    source = generate(result, "class")
    generated.load_state_dict(build_weights_for(generated, source, built.state_dict()),
                              strict=True)
    for x in inputs:
        with torch.no_grad():
            expected = reference(built, x)
            assert torch.equal(built(x), expected), x.shape
            assert torch.equal(generated(x), expected), x.shape
    return source


def import_round_trip(model: nn.Module, sample: tuple[int, ...], x: torch.Tensor
                      ) -> list[dict[str, Any]]:
    """model -> spec -> build, weights loaded strictly, same output; the spec's layers."""
    model = model.eval()
    imported = model_to_spec(model, sample)
    built = netspec.build(dumps(imported.data)).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))
    return imported.data["layers"]


def summary_and_render(spec: str) -> tuple[dict[str, Any], str]:
    """Summary rows by name (params and MACs), and the diagram's dot text."""
    result = netspec.check(spec)
    assert result.ok, [d.format() for d in result.errors]
    rows = {r.name: r for r in summarize(result).rows}
    return rows, to_dot(result)


def dot_with_counts_of_built(spec: str, names: tuple[str, ...]) -> str:
    """The diagram's dot text, once the summary's parameter and buffer counts of the named
    entries are those of the built modules."""
    rows, dot = summary_and_render(spec)
    built = netspec.build(spec)
    for name in names:
        module = getattr(built, name)
        assert rows[name].params == sum(p.numel() for p in module.parameters()), name
        assert rows[name].buffers == sum(b.numel() for b in module.buffers()), name
    return dot


class Calls(nn.Module):
    """A module whose forward is ``body(self, x)``: the torch spellings the importer reads."""

    def __init__(self, body: Callable, **children: nn.Module):
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)
        self.body = body

    def forward(self, x):
        return self.body(self, x)


def dims_strategy(rank: int, st, size: int | None = None):
    """A dim for a tensor of ``rank`` dims (batch included): in range (either sign) mostly,
    sometimes one past either end; a list of ``size`` of them when size is given."""
    one = st.one_of(st.integers(-rank, rank - 1), st.integers(-rank, rank - 1),
                    st.sampled_from([rank, -rank - 1]))
    return one if size is None else st.lists(one, min_size=size, max_size=size)

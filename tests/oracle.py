"""PyTorch as the oracle for netspec's static verdicts.

``torch_verdict`` builds the module and runs it in training mode on zeros with two batch
sizes; a layer "works" on a per-sample shape when both runs succeed, return a tensor whose
first dimension is the batch, agree on the per-sample output shape and produce elements.
(A batch-size-dependent result means PyTorch read the batch as something else, e.g. as
unbatched channels: not a network that works on samples of that shape.)

``netspec_verdict`` runs the whole netspec pipeline (YAML text -> check) on a one-layer spec.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import yaml

import netspec
from netspec.ops import REGISTRY
from netspec.ops.torch_side import torch_class

torch.set_num_threads(1)
BATCHES = (2, 3)


@dataclass
class Verdict:
    ok: bool
    shape: tuple[int, ...] | None = None
    params: int | None = None
    why: str = ""

    def __repr__(self) -> str:
        return (
            f"accepts -> {self.shape}, {self.params} params" if self.ok else f"refuses ({self.why})"
        )


def to_torch(type_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    lt = REGISTRY[type_name]
    return {
        k: lt.arg_by_name[k].type.to_torch(v) if k in lt.arg_by_name else v
        for k, v in kwargs.items()
    }


def torch_verdict(
    type_name: str, kwargs: dict[str, Any], sample: tuple[int, ...], dtype: str = "float32"
) -> Verdict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = torch_class(type_name)(**to_torch(type_name, kwargs))
        except Exception as exc:
            return Verdict(False, why=f"init: {type(exc).__name__}: {exc}")
        module.train()
        shapes = []
        for n in BATCHES:
            x = torch.zeros((n, *sample), dtype=getattr(torch, dtype))
            try:
                y = module(x)
            except Exception as exc:
                return Verdict(False, why=f"forward: {type(exc).__name__}: {exc}")
            if not isinstance(y, torch.Tensor):
                return Verdict(False, why=f"returns {type(y).__name__}, not a tensor")
            if y.dim() == 0 or y.shape[0] != n:
                return Verdict(False, why=f"batch {n} became {tuple(y.shape)}")
            if y.numel() == 0:
                return Verdict(False, why=f"empty output {tuple(y.shape)}")
            shapes.append(tuple(y.shape[1:]))
        if len(set(shapes)) != 1:
            return Verdict(False, why=f"per-sample shape depends on the batch: {shapes}")
    params = sum(p.numel() for p in module.parameters())
    return Verdict(True, shapes[0], params)


def spec_text(type_name: str, args: Any, sample: tuple[int, ...], dtype: str = "float32") -> str:
    entry: Any = type_name if args is None else {type_name: args}
    data = {"netspec": 1, "input": {"shape": list(sample), "dtype": dtype}, "layers": [entry]}
    return yaml.safe_dump(data, sort_keys=False)


def netspec_verdict(
    type_name: str, args: Any, sample: tuple[int, ...], dtype: str = "float32"
) -> Verdict:
    result = netspec.check(spec_text(type_name, args, sample, dtype))
    if not result.ok:
        return Verdict(False, why="; ".join(d.message for d in result.errors))
    layer = result.layers[0]
    return Verdict(True, layer.output_shape, layer.params)


def assert_agree(
    type_name: str,
    kwargs: dict[str, Any],
    sample: tuple[int, ...],
    dtype: str = "float32",
    netspec_args: Any = "same",
) -> tuple[Verdict, Verdict]:
    """netspec (given ``netspec_args``, default the same keywords) and torch must agree on
    accept/refuse, and on output shape and parameter count when both accept."""
    expected = torch_verdict(type_name, kwargs, sample, dtype)
    got = netspec_verdict(
        type_name, kwargs if netspec_args == "same" else netspec_args, sample, dtype
    )
    context = f"{type_name}({kwargs}) on sample {sample} ({dtype}): torch {expected}, netspec {got}"
    assert got.ok == expected.ok, context
    if expected.ok:
        assert got.shape == expected.shape, context
        assert got.params == expected.params, context
    return expected, got

"""Loss, optimizer, LR scheduler and transforms, each from its torch name and arguments.

Names are looked up where torch keeps them (``torch.nn`` losses, ``torch.optim``,
``torch.optim.lr_scheduler``, ``torchvision.transforms.v2``); arguments are checked against
the constructor's signature before it is called, and anything the constructor itself
refuses is reported too, all at the line and column of the entry in the configuration.

Arguments netspec can fill in are filled when left out: a scheduler's length
(``CosineAnnealingLR.T_max``, ``OneCycleLR.total_steps``, ``PolynomialLR.total_iters``) is
the length of the run, ``OneCycleLR.max_lr`` is the optimizer's lr, and a string ``dtype``
(``float32``) becomes the torch dtype."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from netspec.core.diagnostics import did_you_mean
from netspec.train.config import Entry, TrainConfig

STEP_SCHEDULERS = ("OneCycleLR", "CyclicLR")  # stepped every optimizer step by default
NOT_CONFIGURABLE = {  # need Python callables or other schedulers
    "LambdaLR",
    "MultiplicativeLR",
    "SequentialLR",
    "ChainedScheduler",
    "LRScheduler",
    "Lambda",
    "Compose",
    "RandomApply",
    "RandomChoice",
    "RandomOrder",
    "Transform",
}
CLASS_INDEX_LOSSES = ("CrossEntropyLoss", "NLLLoss", "MultiMarginLoss")
# (last layer, loss) -> why the pair trains badly and what to write instead: each loss
# expects raw scores or log-probabilities, and a final layer that already squashes them
# trains without an error, only slower and worse
LAST_LAYER_ADVICE = {
    ("Softmax", "CrossEntropyLoss"): "CrossEntropyLoss applies log-softmax itself, so "
    "softmax is applied twice and the gradients shrink; end with the Linear (apply softmax "
    "only to read probabilities, as netspec predict does)",
    ("Softmax", "NLLLoss"): "NLLLoss expects log-probabilities; end with LogSoftmax "
    "instead (or drop it and use CrossEntropyLoss)",
    ("Sigmoid", "BCEWithLogitsLoss"): "BCEWithLogitsLoss applies the sigmoid itself; end "
    "with the Linear, or use BCELoss",
}


def last_layer_warnings(result: Any, loss_name: str) -> list[str]:
    """A final layer that the loss undoes or repeats (Softmax before CrossEntropyLoss), as
    positioned warnings."""
    layers = result.layers
    last = layers[-1] if layers else None
    advice = LAST_LAYER_ADVICE.get((last.type, loss_name)) if last is not None else None
    if advice is None or result.document is None:
        return []
    where = result.document.diagnostic(last.path or ("layers", len(layers) - 1),
                                  f"layer {last.index} ({last.type}) is the last layer and "
                                  f"the loss is {loss_name}: {advice}", severity="warning")
    return [where.format()]


def _table(module: Any, base: type) -> dict[str, type]:
    out = {}
    for name in dir(module):
        obj = getattr(module, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, base)
            and obj is not base
            and not name.startswith("_")
            and name not in NOT_CONFIGURABLE
        ):
            out[name] = obj
    return out


def losses() -> dict[str, type]:
    return _table(torch.nn, torch.nn.modules.loss._Loss)


def optimizers() -> dict[str, type]:
    return _table(torch.optim, torch.optim.Optimizer)


def schedulers() -> dict[str, type]:
    sched = torch.optim.lr_scheduler
    table = _table(sched, sched.LRScheduler)
    table["ReduceLROnPlateau"] = sched.ReduceLROnPlateau
    return table


def transforms() -> dict[str, type]:
    from torchvision.transforms import v2

    return _table(v2, v2.Transform)


def lookup(cfg: TrainConfig, entry: Entry, table: dict[str, type], what: str, where: str) -> type:
    if entry.name not in table:
        raise cfg.error(
            entry.args_path,
            f"unknown {what} '{entry.name}'"
            f"{did_you_mean(entry.name, sorted(table))} (one of {where})",
            at_key=True,
        )
    return table[entry.name]


def bind(
    cfg: TrainConfig,
    entry: Entry,
    cls: type,
    what: str,
    skip: tuple = (),
    auto: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The entry's arguments as keywords, checked against ``cls``'s signature, with the
    ``auto`` values filled in where not given."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return {**(auto or {}), **entry.kwargs}
    params = [p for p in sig.parameters.values() if p.name not in skip]
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    named = [p for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    positional = [p for p in named if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    label = f"{what} {entry.name}"
    if len(entry.args) > len(positional):
        names = ", ".join(p.name for p in positional)
        raise cfg.error(
            entry.args_path,
            f"{label} takes at most {len(positional)} positional "
            f"argument{'s' if len(positional) != 1 else ''} ({names}), got "
            f"{len(entry.args)}",
        )
    kwargs = _keywords(cfg, entry, label, positional, named, skip, var_kw)
    for key, value in (auto or {}).items():
        kwargs.setdefault(key, value)
    missing = [p.name for p in named if p.default is p.empty and p.name not in kwargs]
    if missing:
        raise cfg.error(
            entry.path,
            f"{label} needs {', '.join(missing)}: write "
            f"{{{entry.name}: {{{', '.join(m + ': ...' for m in missing)}}}}}",
        )
    return _with_torch_dtypes(cfg, entry, label, kwargs)


def _keywords(
    cfg: TrainConfig, entry: Entry, label: str, positional: list, named: list, skip: tuple,
    var_kw: bool,
) -> dict[str, Any]:
    """The entry's positional and keyword arguments, all by name; a keyword that netspec
    sets, that ``cls`` does not take or that is given twice is an error."""
    kwargs = {p.name: v for p, v in zip(positional, entry.args, strict=False)}
    for key, value in entry.kwargs.items():
        if key in skip:
            raise cfg.error(
                entry.args_path + (key,),
                f"{label}: '{key}' is set by netspec "
                "(the model's parameters, the optimizer); leave it out",
                at_key=True,
            )
        if key not in {p.name for p in named} and not var_kw:
            raise cfg.error(
                entry.args_path + (key,),
                f"unknown argument '{key}' for {label}{did_you_mean(key, [p.name for p in named])}",
                at_key=True,
            )
        if key in kwargs:
            raise cfg.error(
                entry.args_path + (key,),
                f"{label}: '{key}' is given twice (positionally and by name)",
                at_key=True,
            )
        kwargs[key] = value
    return kwargs


def _with_torch_dtypes(
    cfg: TrainConfig, entry: Entry, label: str, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """A dtype argument written as a name ('float16') becomes the torch.dtype."""
    for key, value in kwargs.items():
        if key == "dtype" and isinstance(value, str):
            dtype = getattr(torch, value, None)
            if not isinstance(dtype, torch.dtype):
                raise cfg.error(entry.args_path + (key,), f"{label}: unknown dtype '{value}'")
            kwargs[key] = dtype
    return kwargs


def construct(
    cfg: TrainConfig, entry: Entry, cls: type, what: str, *args: Any, **kwargs: Any
) -> Any:
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError, RuntimeError, KeyError, AssertionError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise cfg.error(entry.path, f"{what} {entry.name}: {text}") from None


def build_loss(cfg: TrainConfig) -> torch.nn.Module:
    entry = cfg.loss
    cls = lookup(cfg, entry, losses(), "loss", "the torch.nn losses, e.g. CrossEntropyLoss")
    return construct(cfg, entry, cls, "loss", **bind(cfg, entry, cls, "loss"))


def build_optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    """The optimizer; its fused implementation (one kernel for every parameter: Adam's step
    is 2x faster on the CPU for a LeNet) unless the configuration chooses ``fused`` or
    ``foreach`` itself or the parameters are somewhere fused is not implemented."""
    entry = cfg.optimizer
    cls = lookup(cfg, entry, optimizers(), "optimizer", "torch.optim, e.g. SGD, Adam, AdamW")
    kwargs = bind(cfg, entry, cls, "optimizer", skip=("params",))
    if cfg.lr is not None:
        kwargs["lr"] = cfg.lr
    params = list(params)
    if (
        "fused" in inspect.signature(cls).parameters
        and not {"fused", "foreach"} & set(kwargs)
        and params
        and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    ):
        try:
            return cls(params, **kwargs, fused=True)
        except (RuntimeError, ValueError, TypeError):
            pass  # e.g. a dtype the fused kernel lacks: the default implementation
    return construct(cfg, entry, cls, "optimizer", params, **kwargs)


def build_scheduler(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> tuple[Any, str]:
    """(scheduler or None, 'epoch' or 'step': when it is stepped)."""
    entry = cfg.scheduler
    if entry is None:
        return None, "epoch"
    cls = lookup(
        cfg,
        entry,
        schedulers(),
        "scheduler",
        "torch.optim.lr_scheduler, e.g. StepLR, CosineAnnealingLR, OneCycleLR",
    )
    interval = entry.extra.get("interval") or ("step" if entry.name in STEP_SCHEDULERS else "epoch")
    if entry.name == "ReduceLROnPlateau" and interval == "step":
        raise cfg.error(
            entry.path + ("interval",),
            "ReduceLROnPlateau follows the validation "
            "loss, which is measured once per epoch: use interval: epoch",
        )
    length = cfg.epochs if interval == "epoch" else cfg.epochs * max(1, steps_per_epoch)
    given = set(entry.kwargs)
    auto: dict[str, Any] = {}
    if entry.name == "CosineAnnealingLR":
        auto["T_max"] = length
    elif entry.name == "PolynomialLR":
        auto["total_iters"] = length
    elif entry.name == "OneCycleLR":
        auto["max_lr"] = optimizer.param_groups[0]["lr"]
        if not given & {"total_steps", "epochs", "steps_per_epoch"}:
            auto["total_steps"] = length
    kwargs = bind(cfg, entry, cls, "scheduler", skip=("optimizer",), auto=auto)
    return construct(cfg, entry, cls, "scheduler", optimizer, **kwargs), interval


def build_transforms(cfg: TrainConfig, entries: list[Entry]) -> Any:
    """A v2.Compose of the entries, or None for none."""
    if not entries:
        return None
    from torchvision.transforms import v2

    table = transforms()
    out = []
    for entry in entries:
        cls = lookup(cfg, entry, table, "transform", "torchvision.transforms.v2, e.g. Normalize")
        out.append(construct(cfg, entry, cls, "transform", **bind(cfg, entry, cls, "transform")))
    return v2.Compose(out)


def targets_for(loss_name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(labels, output) -> what the loss compares the output with: the class indices for
    a loss that takes them, else one-hot float targets."""
    if loss_name in CLASS_INDEX_LOSSES:
        return lambda y, out: y
    return lambda y, out: torch.nn.functional.one_hot(y, out.shape[-1]).to(out.dtype)

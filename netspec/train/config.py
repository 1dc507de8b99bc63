"""The ``train:`` configuration: defaults, where each value came from, and its validation.

A configuration is merged from up to four sources, later ones winning key by key:

1. the defaults below;
2. the spec's ``train:`` section (or, on ``--resume``, the run's ``train.yaml``);
3. a ``--config train.yaml`` file (its keys at the top level, or under ``train:``);
4. the command line (``--epochs 5``, ``--lr 0.1``, ``--set optimizer.SGD.momentum=0.9``).

Every value remembers where it was written, so a problem is reported as
``FILE:LINE:COL: error: ...`` in the file that holds it (``<command line>:1:COL`` for a
flag, the column being where the flag starts in the command).  ``data`` is merged key by
key; every other key is replaced as a whole.

This module checks shapes and types only and does not import torch; the names of losses,
optimizers, schedulers, transforms and datasets, and their arguments, are checked against
torch itself by ``components.py`` and ``data.py`` with the same positions."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netspec.core.diagnostics import Diagnostic, SpecError, did_you_mean
from netspec.core.document import Document
from netspec.emit.checkpoint import CheckpointError

CLI_FILE = "<command line>"
Origin = tuple[str, int, int]  # file, line, column

DEFAULTS: dict[str, Any] = {
    "data": {
        "name": "digits",
        "root": "data",
        "download": False,
        "val_split": 0.1,
        "split_seed": 0,
        "transforms": [],
        "augment": [],
        "in_memory": "auto",
        "workers": "auto",
        "drop_last": False,
        "args": {},
    },
    "epochs": 10,
    "batch_size": 64,
    "eval_batch_size": None,  # None: max(batch_size, 512)
    "loss": "CrossEntropyLoss",
    "optimizer": {"Adam": {"lr": 0.001}},
    "lr": None,  # shorthand that overrides the optimizer's lr
    "scheduler": None,
    "clip_grad_norm": None,
    "accumulate": 1,
    "seed": 0,
    "device": "auto",
    "precision": "fp32",
    "compile": False,
    "channels_last": "auto",
    "deterministic": False,
    # true: a network with more outputs than the data has classes trains anyway (refused by
    # default: a 10-way head on 2 classes is usually the wrong spec)
    "more_outputs_than_classes": False,
    "runs": "runs",
    "name": None,
    "tensorboard": True,
    "progress": "auto",
}
TOP_KEYS = tuple(DEFAULTS)
DATA_KEYS = tuple(DEFAULTS["data"])
ENTRY_KEYS = ("loss", "optimizer", "scheduler")  # name-and-arguments values
SCHEDULER_EXTRA = ("interval",)  # keys a scheduler entry may carry besides its name
PRECISIONS = ("fp32", "bf16", "fp16")
PROGRESS = ("auto", "bar", "plain", "none")
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class ConfigError(SpecError):
    """A training configuration problem; carries positioned diagnostics like SpecError."""


@dataclass
class Entry:
    """A name with arguments: ``Adam``, ``{Adam: {lr: 0.1}}``, ``{RandomCrop: [32, 4]}``."""

    name: str
    args: list[Any]  # positional, in the torch constructor's order
    kwargs: dict[str, Any]
    path: tuple  # the entry in the merged configuration
    form: str = "none"  # none | keywords | positional | scalar
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. a scheduler's interval

    @property
    def args_path(self) -> tuple:
        return self.path + (self.name,)

    def as_yaml(self) -> Any:
        """The entry in the canonical mapping form, for the run's train.yaml."""
        if self.form == "none" and not self.extra:
            return self.name
        value: Any = (
            dict(self.kwargs)
            if self.form in ("keywords", "none")
            else (list(self.args) if self.form == "positional" else self.args[0])
        )
        return {self.name: value or None, **self.extra}


@dataclass
class DataConfig:
    name: str
    root: str
    download: bool
    val_split: float
    split_seed: int
    transforms: list[Entry]
    augment: list[Entry]
    in_memory: str | bool
    workers: int | None  # None: auto
    drop_last: bool
    args: dict[str, Any]


@dataclass
class TrainConfig:
    data: DataConfig
    epochs: int
    batch_size: int  # global: the samples of one step over all processes together
    eval_batch_size: int
    loss: Entry
    optimizer: Entry
    scheduler: Entry | None
    lr: float | None
    clip_grad_norm: float | None
    accumulate: int
    seed: int
    device: str
    precision: str
    compile: bool
    channels_last: str | bool
    deterministic: bool
    more_outputs_than_classes: bool
    runs: str
    name: str | None
    tensorboard: bool
    progress: str
    sources: Sources = field(repr=False)

    def diagnostic(self, path: tuple, message: str, at_key: bool = False) -> Diagnostic:
        return self.sources.diagnostic(path, message, at_key=at_key)

    def error(self, path: tuple, message: str, at_key: bool = False) -> ConfigError:
        return ConfigError([self.diagnostic(path, message, at_key)])

    def as_dict(self) -> dict[str, Any]:
        """The effective configuration as plain data: what train.yaml holds."""
        d = self.data
        return {
            "data": {
                "name": d.name,
                "root": d.root,
                "download": d.download,
                "val_split": d.val_split,
                "split_seed": d.split_seed,
                "transforms": [e.as_yaml() for e in d.transforms],
                "augment": [e.as_yaml() for e in d.augment],
                "in_memory": d.in_memory,
                "workers": "auto" if d.workers is None else d.workers,
                "drop_last": d.drop_last,
                "args": dict(d.args),
            },
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "loss": self.loss.as_yaml(),
            "optimizer": self.optimizer.as_yaml(),
            "lr": self.lr,
            "scheduler": self.scheduler.as_yaml() if self.scheduler else None,
            "clip_grad_norm": self.clip_grad_norm,
            "accumulate": self.accumulate,
            "seed": self.seed,
            "device": self.device,
            "precision": self.precision,
            "compile": self.compile,
            "channels_last": self.channels_last,
            "deterministic": self.deterministic,
            "more_outputs_than_classes": self.more_outputs_than_classes,
            "runs": self.runs,
            "name": self.name,
            "tensorboard": self.tensorboard,
        }  # progress is how this invocation displays, not part of the run

    def dumps(self) -> str:
        import yaml

        return yaml.safe_dump(
            _plain(self.as_dict()), sort_keys=False, default_flow_style=None, allow_unicode=True
        )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ------------------------------------------------------------------ sources and positions


class Sources:
    """The merged configuration data and, for every path into it, where it was written."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.values: dict[tuple, Origin] = {}
        self.keys: dict[tuple, Origin] = {}
        self.fallback: Origin = (CLI_FILE, 1, 1)
        self.errors: list[Diagnostic] = []

    def where(self, path: tuple, at_key: bool = False) -> Origin:
        path = tuple(path)
        if at_key and path in self.keys:
            return self.keys[path]
        while path and path not in self.values:
            path = path[:-1]
        return self.values.get(path, self.fallback)

    def diagnostic(self, path: tuple, message: str, at_key: bool = False) -> Diagnostic:
        file, line, col = self.where(path, at_key)
        return Diagnostic(file, line, col, message)

    def _forget(self, path: tuple) -> None:
        n = len(path)
        for table in (self.values, self.keys):
            for p in [p for p in table if p[:n] == path and len(p) > n]:
                del table[p]

    def _adopt(self, doc: Document, doc_path: tuple, path: tuple) -> None:
        """Record the positions of ``doc``'s subtree at ``doc_path`` as those of ``path``."""
        n = len(doc_path)
        for table, source in ((self.values, doc.positions), (self.keys, doc.keys)):
            for p, (line, col) in source.items():
                if p[:n] == doc_path:
                    table[path + p[n:]] = (doc.file, line, col)

    def merge_document(self, doc: Document, doc_path: tuple = ()) -> None:
        """Merge the mapping at ``doc_path`` of a loaded YAML document."""
        section = doc.data
        for key in doc_path:
            section = section[key]
        if not isinstance(section, dict):
            line, col = doc.where(doc_path)
            where = "train" if doc_path == ("train",) else "a training configuration"
            self.errors.append(
                Diagnostic(
                    doc.file,
                    line,
                    col,
                    f"{where} must be a mapping of settings (epochs: 10, batch_size: 64, ...), "
                    f"got {show(section)}",
                )
            )
            return
        if not self.data:
            self.fallback = (doc.file, *doc.where(doc_path))
        for key, value in section.items():
            if key == "data":
                self._merge_data(value, doc, doc_path + ("data",))
                continue
            self._replace((key,), value)
            self._adopt(doc, doc_path + (key,), (key,))

    def _merge_data(self, value: Any, doc: Document, doc_path: tuple) -> None:
        current = self.data.get("data")
        if isinstance(value, str):  # data: CIFAR10 is data: {name: CIFAR10}
            value = {"name": value}
            if not isinstance(current, dict):
                current = self.data["data"] = {}
            self._forget(("data", "name"))
            current["name"] = value["name"]
            origin = (doc.file, *doc.where(doc_path))
            self.values[("data", "name")] = origin
            self.values.setdefault(("data",), origin)
            return
        if not isinstance(value, dict) or not isinstance(current, dict):
            self._replace(("data",), value)
            self._adopt(doc, doc_path, ("data",))
            return
        self.values[("data",)] = (doc.file, *doc.where(doc_path))
        for key, sub in value.items():
            self._replace(("data", key), sub)
            self._adopt(doc, doc_path + (key,), ("data", key))

    def _replace(self, path: tuple, value: Any) -> None:
        node = self.data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        self._forget(path)

    def set(self, path: tuple, value: Any, origin: Origin) -> None:
        """Set one value from the command line (``--epochs 5``, ``--set a.b=c``)."""
        if path == ("data",) and isinstance(value, str):
            path = ("data", "name")
        node: Any = self.data
        for i, key in enumerate(path[:-1]):
            nxt = node.get(key) if isinstance(node, dict) else None
            if isinstance(nxt, str) and i + 1 < len(path) and nxt == path[i + 1]:
                nxt = {nxt: {}}  # optimizer: SGD, then --set optimizer.SGD.momentum=0.9
            elif (
                isinstance(nxt, dict)
                and key in ENTRY_KEYS
                and len(path) > i + 1
                and (str(path[i + 1])[:1].isupper())
            ):  # switching the optimizer: drop the other name
                nxt = {k: v for k, v in nxt.items() if not str(k)[:1].isupper() or k == path[i + 1]}
            elif not isinstance(nxt, dict):
                nxt = {}
            node[key] = nxt
            self.values.setdefault(path[: i + 1], origin)
            node = nxt
        node[path[-1]] = value
        self._forget(path)
        self.values[path] = origin
        self.keys[path] = origin


def locate_flag(argv: list[str], flag: str, value: str | None = None) -> Origin:
    """Where ``flag`` (its last use) starts in the command line, for diagnostics; given
    ``value``, where that value of the flag is written (``--set KEY=VALUE``)."""

    def hit(token: str) -> bool:
        if value is not None:
            return token in (value, f"{flag}={value}")
        return token == flag or token.startswith(flag + "=")

    col = 1 + len("netspec ")
    found = None
    for token in argv:
        if hit(token):
            found = col
        col += len(token) + 1
    return (CLI_FILE, 1, found or 1)


def load_config_file(path: str) -> Document:
    """A ``--config`` file: the loader's positions; OSError propagates (exit 2)."""
    from netspec.core.document import read_file

    return read_file(path)


def config_section(doc: Document) -> tuple:
    """Where a --config file keeps its settings: at the top, or under ``train:``."""
    if isinstance(doc.data, dict) and "train" in doc.data and "epochs" not in doc.data:
        return ("train",)
    return ()


# ------------------------------------------------------------------ validation


def show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class _Checker:
    def __init__(self, sources: Sources):
        self.s = sources
        self.errors: list[Diagnostic] = list(sources.errors)

    def fail(self, path: tuple, message: str, at_key: bool = False) -> None:
        self.errors.append(self.s.diagnostic(path, message, at_key))

    def label(self, path: tuple) -> str:
        return "train." + ".".join(str(p) for p in path)

    def integer(self, value: Any, path: tuple, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"{self.label(path)} must be an integer, got {show(value)}")
            return None
        if value < minimum:
            what = "a positive integer" if minimum == 1 else f"at least {minimum}"
            self.fail(path, f"{self.label(path)} must be {what}, got {value}")
            return None
        return value

    def number(self, value: Any, path: tuple, optional: bool = True) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"{self.label(path)} must be a number, got {show(value)}")
            return None
        if not value > 0:
            self.fail(path, f"{self.label(path)} must be positive, got {value}")
            return None
        return float(value)

    def boolean(self, value: Any, path: tuple) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"{self.label(path)} must be true or false, got {show(value)}")
            return False
        return value

    def string(self, value: Any, path: tuple, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            self.fail(path, f"{self.label(path)} must be a string, got {show(value)}")
            return None
        return value

    def choice(self, value: Any, path: tuple, choices: tuple) -> Any:
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            listed = ", ".join(show(c) for c in choices)
            hint = did_you_mean(value, [str(c) for c in choices]) if isinstance(value, str) else ""
            self.fail(path, f"{self.label(path)} must be one of {listed}, got {show(value)}{hint}")
            return choices[0]
        return value

    def auto_or_bool(self, value: Any, path: tuple) -> str | bool:
        if value == "auto" or isinstance(value, bool):
            return value
        self.fail(path, f"{self.label(path)} must be auto, true or false, got {show(value)}")
        return "auto"

    def keys(self, mapping: dict, path: tuple, allowed: tuple, where: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.fail(
                    path + (key,),
                    f"unknown key '{key}' in {where}{did_you_mean(str(key), list(allowed))}",
                    at_key=True,
                )

    def entry(
        self, value: Any, path: tuple, what: str, example: str, extra: tuple = ()
    ) -> Entry | None:
        """A name-and-arguments value."""
        label = self.label(path)
        if isinstance(value, str):
            if not value:
                self.fail(path, f"{label} is empty; write a name such as {example}")
                return None
            return Entry(value, [], {}, path)
        if not isinstance(value, dict):
            self.fail(
                path,
                f"{label} must be a {what} name such as {example}, or a mapping "
                f"{{{example}: {{...arguments}}}}, got {show(value)}",
            )
            return None
        names = [k for k in value if isinstance(k, str) and k[:1].isupper()]
        others = [k for k in value if k not in names]
        reported = self.unknown_entry_keys(others, path, label, what, example, extra)
        if not names and reported:
            return None
        if len(names) != 1:
            found = f"found {' and '.join(names)}" if names else "found none"
            self.fail(path, f"{label} takes exactly one {what} name such as {example}; {found}")
            return None
        name = names[0]
        args = value[name]
        ex = {k: value[k] for k in others if k in extra}
        if args is None:
            return Entry(name, [], {}, path, "none", ex)
        if isinstance(args, dict):
            bad = [k for k in args if not isinstance(k, str)]
            for k in bad:
                self.fail(
                    path + (name, k), f"{label}: argument names are strings, got {k!r}", at_key=True
                )
            return Entry(name, [], dict(args), path, "keywords", ex)
        if isinstance(args, list):
            return Entry(name, list(args), {}, path, "positional", ex)
        return Entry(name, [args], {}, path, "scalar", ex)

    def unknown_entry_keys(
        self, keys: list, path: tuple, label: str, what: str, example: str, extra: tuple
    ) -> bool:
        """Report the keys beside the name that are not in ``extra``; whether there were any."""
        reported = False
        for key in keys:
            if key not in extra:
                reported = True
                if key == "name":
                    msg = (
                        f"{label}: write the {what} as the key, as in {{{example}: "
                        "{...arguments}}, not with 'name:'"
                    )
                else:
                    allowed = f"; allowed besides the name: {', '.join(extra)}" if extra else ""
                    msg = (
                        f"unknown key '{key}' in {label}{did_you_mean(str(key), list(extra))}"
                        f"{allowed} ({what} names are CamelCase, as in torch)"
                    )
                self.fail(path + (key,), msg, at_key=True)
        return reported

    def entry_list(self, value: Any, path: tuple, what: str, example: str) -> list[Entry]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(
                path,
                f"{self.label(path)} must be a list of {what}s, such as "
                f"[{example}], got {show(value)}",
            )
            return []
        out = []
        for i, item in enumerate(value):
            e = self.entry(item, path + (i,), what, example)
            if e is not None:
                out.append(e)
        return out


def _val_split(c: _Checker, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < 1):
        c.fail(
            ("data", "val_split"),
            "train.data.val_split must be a fraction from 0 (no "
            f"validation split) up to but not including 1, got {show(value)}",
        )
        return 0.1
    return float(value)


def _workers(c: _Checker, value: Any) -> int | None:
    """None for auto (worker_count decides)."""
    if value == "auto":
        return None
    return c.integer(value, ("data", "workers"), 0)


def _dataset_args(c: _Checker, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        c.fail(
            ("data", "args"),
            "train.data.args must be a mapping of keyword arguments for "
            f"the dataset, got {show(value)}",
        )
        return {}
    return value


def _data_config(c: _Checker, value: Any) -> DataConfig:
    if not isinstance(value, dict):
        c.fail(
            ("data",),
            f"train.data must be a dataset name such as digits or CIFAR10, or a "
            f"mapping {{name: CIFAR10, root: data}}, got {show(value)}",
        )
        value = {}
    data_raw = {**DEFAULTS["data"], **value}
    c.keys(data_raw, ("data",), DATA_KEYS, "train.data")
    val_split = _val_split(c, data_raw["val_split"])
    workers = _workers(c, data_raw["workers"])
    args = _dataset_args(c, data_raw["args"])
    return DataConfig(
        name=c.string(data_raw["name"], ("data", "name")) or "digits",
        root=c.string(data_raw["root"], ("data", "root")) or "data",
        download=c.boolean(data_raw["download"], ("data", "download")),
        val_split=val_split,
        split_seed=c.integer(data_raw["split_seed"], ("data", "split_seed"), 0) or 0,
        transforms=c.entry_list(
            data_raw["transforms"],
            ("data", "transforms"),
            "transform",
            "Normalize: {mean: [0.5], std: [0.5]}",
        ),
        augment=c.entry_list(
            data_raw["augment"], ("data", "augment"), "transform", "RandomCrop: [32, 4]"
        ),
        in_memory=c.auto_or_bool(data_raw["in_memory"], ("data", "in_memory")),
        workers=workers,
        drop_last=c.boolean(data_raw["drop_last"], ("data", "drop_last")),
        args=args,
    )


def _eval_batch_size(c: _Checker, value: Any, batch_size: int) -> int:
    """Unset: the training batch, at least 512 (evaluation keeps no gradients)."""
    if value is None:
        return max(batch_size, 512)
    return c.integer(value, ("eval_batch_size",), 1) or 1


def _scheduler(c: _Checker, value: Any) -> Entry | None:
    if value is None:
        return None
    scheduler = c.entry(value, ("scheduler",), "scheduler", "StepLR", extra=SCHEDULER_EXTRA)
    if scheduler and "interval" in scheduler.extra:
        c.choice(scheduler.extra["interval"], ("scheduler", "interval"), ("epoch", "step"))
    return scheduler


def _device(c: _Checker, value: Any) -> str:
    if not isinstance(value, str) or not DEVICE.fullmatch(value):
        c.fail(
            ("device",), f"train.device must be auto, cpu, cuda, cuda:N or mps, got {show(value)}"
        )
        return "auto"
    return value


def _run_name(c: _Checker, value: Any) -> str | None:
    name = c.string(value, ("name",), optional=True)
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        c.fail(
            ("name",),
            f"train.name names a folder under runs/: letters, digits, '_', '-' "
            f"and '.', got {show(name)}",
        )
    return name


def validate(sources: Sources) -> TrainConfig:
    """The checked configuration; raises ConfigError with every problem found.

    Each setting is checked in the same order every time, so that problems sharing a
    position are reported in a stable order."""
    c = _Checker(sources)
    raw = sources.data
    c.keys(raw, (), TOP_KEYS, "train")
    get = lambda key: raw.get(key, DEFAULTS[key])  # noqa: E731

    data = _data_config(c, get("data"))
    batch_size = c.integer(get("batch_size"), ("batch_size",), 1) or 1
    eval_batch = _eval_batch_size(c, get("eval_batch_size"), batch_size)
    scheduler = _scheduler(c, get("scheduler"))
    loss = c.entry(get("loss"), ("loss",), "loss", "CrossEntropyLoss")
    optimizer = c.entry(get("optimizer"), ("optimizer",), "optimizer", "Adam")
    device = _device(c, get("device"))
    name = _run_name(c, get("name"))
    config = TrainConfig(
        data=data,
        epochs=c.integer(get("epochs"), ("epochs",), 1) or 1,
        batch_size=batch_size,
        eval_batch_size=eval_batch,
        loss=loss or Entry("CrossEntropyLoss", [], {}, ("loss",)),
        optimizer=optimizer or Entry("Adam", [], {}, ("optimizer",)),
        scheduler=scheduler,
        lr=c.number(get("lr"), ("lr",)),
        clip_grad_norm=c.number(get("clip_grad_norm"), ("clip_grad_norm",)),
        accumulate=c.integer(get("accumulate"), ("accumulate",), 1) or 1,
        seed=c.integer(get("seed"), ("seed",), 0) or 0,
        device=device,
        precision=c.choice(get("precision"), ("precision",), PRECISIONS),
        compile=c.boolean(get("compile"), ("compile",)),
        channels_last=c.auto_or_bool(get("channels_last"), ("channels_last",)),
        deterministic=c.boolean(get("deterministic"), ("deterministic",)),
        more_outputs_than_classes=c.boolean(get("more_outputs_than_classes"),
                                            ("more_outputs_than_classes",)),
        runs=c.string(get("runs"), ("runs",)) or "runs",
        name=name,
        tensorboard=c.boolean(get("tensorboard"), ("tensorboard",)),
        progress=c.choice(get("progress"), ("progress",), PROGRESS),
        sources=sources,
    )
    if c.errors:
        raise ConfigError(sorted(c.errors, key=lambda d: (d.file, d.line, d.col)))
    return config


def resolve(
    spec_doc: Document | None = None,
    config_docs: list[Document] = (),
    overrides: list[tuple[tuple, Any, Origin]] = (),
    saved: list[tuple[tuple, Any, Origin]] = (),
) -> TrainConfig:
    """Merge the sources in order and validate.  ``overrides``: (path, value, origin);
    ``saved`` (a checkpoint's settings, the same form) come after the spec's train section,
    before the config files."""
    sources = Sources()
    if spec_doc is not None and isinstance(spec_doc.data, dict) and "train" in spec_doc.data:
        sources.merge_document(spec_doc, ("train",))
    for path, value, origin in saved:
        sources.set(tuple(path), value, origin)
    for doc in config_docs:
        sources.merge_document(doc, config_section(doc))
    for path, value, origin in overrides:
        sources.set(tuple(path), value, origin)
    return validate(sources)


def dict_overrides(values: dict[str, Any] | None, file: str = "<python>") -> list:
    """Overrides from plain data (the Python API): ``{"epochs": 3, "data.val_split": 0.2}``;
    a ``data`` mapping is merged key by key, as in a file."""
    out: list[tuple[tuple, Any, Origin]] = []
    for key, value in (values or {}).items():
        path = tuple(str(key).split("."))
        if path == ("data",) and isinstance(value, dict):
            out.extend((("data", k), v, (file, 1, 1)) for k, v in value.items())
        else:
            out.append((path, value, (file, 1, 1)))
    return out


def checked_spec(source: Any) -> tuple[Any, Any]:
    """(spec, its check result) from what as_spec takes; SpecError if it has errors."""
    from netspec.pipeline.check import as_spec, check

    spec = as_spec(source)
    result = check(spec)
    if not result.ok:
        raise SpecError(result.errors)
    return spec, result


def overrides_list(overrides: Any) -> list:
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return dict_overrides(overrides)
    return list(overrides)


def resolve_run(
    spec: Any = None,
    config_files: list[str] = (),
    overrides: Any = None,
    resume: str | os.PathLike | None = None,
) -> tuple[Any, Any, TrainConfig, Path | None]:
    """(spec, check result, configuration, checkpoint to resume or None), without torch.

    On resume the run's spec.yaml and train.yaml are the base (a spec given as well must be
    the same network: the checkpoint says so when it loads).  Raises SpecError, ConfigError
    or CheckpointError; OSError for unreadable files."""
    ckpt_path = None
    run_config: list[str] = []
    if resume is not None:
        resume = Path(resume)
        ckpt_path = resume if resume.suffix == ".pt" else resume / "last.pt"
        run_dir = ckpt_path.parent
        if not ckpt_path.is_file():
            raise CheckpointError(
                f"--resume {resume}: no checkpoint {ckpt_path} (a run folder "
                "holds last.pt once its first epoch has finished)"
            )
        if spec is None:
            spec = run_dir / "spec.yaml"
        if (run_dir / "train.yaml").is_file():
            run_config.append(str(run_dir / "train.yaml"))
    if spec is None:
        raise ValueError("a spec is needed (or resume=RUN_DIR)")
    spec, result = checked_spec(spec)
    docs = [load_config_file(p) for p in [*run_config, *config_files]]
    cfg = resolve(None if resume is not None else spec.doc, docs, overrides_list(overrides))
    return spec, result, cfg, ckpt_path

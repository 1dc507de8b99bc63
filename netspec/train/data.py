"""Datasets, splits and batches.

Sources: ``digits`` (the 8×8 handwritten digits scikit-learn ships: 1,797 real images, no
download; a fixed 20% is the test set), any torchvision classification dataset by name
(``MNIST``, ``CIFAR10``, ``SVHN``, ...; ``root``/``download``), ``ImageFolder`` (see
:func:`folder_layout`: ``root/train`` with ``val/`` and/or ``test/`` beside it, or ``root``
itself one folder per class) and ``FakeData``.
Images become float tensors in [0, 1] (``ToImage``, ``ToDtype``), then the configured
``transforms`` run (every split), with ``augment`` before them on the training split only.

A dataset that fits in memory (no ``augment``, under ``MEMORY_LIMIT``) is decoded once and
held as two tensors on the training device; batches are ``index_select`` over a permutation,
with no per-sample Python.  Anything else streams through DataLoader workers.  Either way
the order of an epoch is :class:`BatchPlan`: a permutation seeded by (seed, epoch), cut into
global batches; with N processes, process r takes items r, r+N, ... of every batch, so N
processes see exactly the global batches one process would."""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from netspec.core.diagnostics import did_you_mean
from netspec.train.components import build_transforms
from netspec.train.config import ConfigError, TrainConfig

MEMORY_LIMIT = 2 * 2**30  # bytes of float32 samples held in memory at most ("auto")
DIGITS_TEST_FRACTION = 0.2
# torchvision datasets whose test split is not called "test"
SPLIT_NAMES = {
    "OxfordIIITPet": ("trainval", "test"),
    "ImageNet": ("train", "val"),
    "Imagenette": ("train", "val"),
    "Places365": ("train-standard", "val"),
}


@dataclass
class Split:
    """One split: in memory (``x``, ``y`` tensors) or a dataset that streams."""

    name: str
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    dataset: Any = None

    def __len__(self) -> int:
        return len(self.y) if self.y is not None else len(self.dataset)

    @property
    def in_memory(self) -> bool:
        return self.x is not None


@dataclass
class Data:
    train: Split
    val: Split | None
    test: Split | None
    classes: list[str]
    sample_shape: tuple[int, ...]
    name: str
    splits: str = ""  # which folder or share is which split, where that is not obvious

    def describe(self) -> str:
        parts = [f"{len(self.train):,} train"]
        if self.val is not None:
            parts.append(f"{len(self.val):,} val")
        if self.test is not None:
            parts.append(f"{len(self.test):,} test")
        where = (
            f"in memory ({self.train.x.device})"
            if self.train.in_memory
            else "streamed by DataLoader"
        )
        shape = "×".join(map(str, self.sample_shape))
        text = f"{self.name}: {' / '.join(parts)}, {shape}, {len(self.classes)} classes, {where}"
        return text + (f"\n  {self.splits}" if self.splits else "")


# ------------------------------------------------------------------ the order of an epoch


class BatchPlan:
    """The batches of an epoch for one process, as index tensors (see the module doc).

    ``set_epoch(e)`` chooses the permutation; ``start`` skips batches already done (a
    resumed epoch).  A final batch smaller than the number of processes is dropped (a
    process would get no sample), as is any partial final batch with ``drop_last``."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        world: int = 1,
        rank: int = 0,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
    ):
        self.n, self.batch_size, self.world, self.rank = n, batch_size, world, rank
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.epoch, self.start = 0, 0
        self.device: torch.device | str = "cpu"
        full, rest = divmod(n, batch_size)
        self.sizes = [batch_size] * full
        if rest and not drop_last and rest >= world:
            self.sizes.append(rest)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sizes)

    def order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g)

    def weights(self, accumulate: int) -> list[float]:
        """Per batch, the factor that turns this process's mean loss into its share of the
        mean over the whole optimizer step (every process, every accumulated batch):
        exactly 1.0 for one process without accumulation."""
        out = []
        for c in range(0, len(self.sizes), accumulate):
            cycle = self.sizes[c : c + accumulate]
            total = sum(cycle)
            for size in cycle:
                mine = len(range(self.rank, size, self.world))
                out.append(mine * self.world / total)
        return out

    def __iter__(self):
        order = self.order().to(self.device)
        start = sum(self.sizes[: self.start])
        for size in self.sizes[self.start :]:
            yield order[start : start + size][self.rank :: self.world]
            start += size


class _ListPlan:
    """A BatchPlan as the DataLoader's batch_sampler (lists of ints)."""

    def __init__(self, plan: BatchPlan):
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan) - self.plan.start

    def __iter__(self):
        for idx in self.plan:
            if len(idx):  # an evaluation batch smaller than the number of processes
                yield idx.tolist()


# ------------------------------------------------------------------ datasets


class Transformed(torch.utils.data.Dataset):
    """``base[indices[i]]`` through ``transform``, with the label as an int."""

    def __init__(self, base: Any, indices: list[int] | None, transform: Any):
        self.base, self.indices, self.transform = base, indices, transform

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(self.base)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        x, y = self.base[self.indices[i] if self.indices is not None else i]
        if self.transform is not None:
            x = self.transform(x)
        return x, int(y)


class _Tensors(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


def digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8×8 digits as (N, 1, 8, 8) float32 in [0, 1] and int64 labels.

    Read from the CSV that scikit-learn ships (importing sklearn itself costs a second)."""
    import numpy as np

    found = importlib.util.find_spec("sklearn")
    csv = None
    for folder in (found.submodule_search_locations or []) if found else []:
        candidate = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if candidate.is_file():
            csv = candidate
    if csv is not None:
        table = np.loadtxt(csv, delimiter=",", dtype=np.float32)
        images, labels = table[:, :-1], table[:, -1]
    else:  # pragma: no cover - a scikit-learn without the CSV
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, labels = bunch.data.astype(np.float32), bunch.target
    x = torch.from_numpy(np.ascontiguousarray(images)).reshape(-1, 1, 8, 8) / 16.0
    return x, torch.from_numpy(labels.astype(np.int64))


def _split_indices(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held out): a seeded permutation, the last round(n*fraction) held out."""
    held = round(n * fraction)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[: n - held].sort().values, order[n - held :].sort().values


def dataset_names() -> list[str]:
    import torchvision.datasets as tvd

    return ["digits", *sorted(n for n in tvd.__all__ if n[:1].isupper())]


def _torchvision_sets(
    cfg: TrainConfig, spec_input: tuple[int, ...]
) -> tuple[Any, Any | None, Any | None, list[str] | None, str]:
    """(train, val or None, test or None, classes, which split is which) as raw datasets
    (PIL images, int labels); val is None where it is held out of train."""
    import torchvision.datasets as tvd

    name = cfg.data.name
    if name not in tvd.__all__ or not isinstance(getattr(tvd, name, None), type):
        raise cfg.error(
            ("data", "name"),
            f"unknown dataset '{name}'"
            f"{did_you_mean(name, dataset_names())}; netspec trains on digits, "
            "FakeData, ImageFolder or a torchvision dataset by name",
        )
    cls = getattr(tvd, name)
    if name == "ImageFolder":
        return _image_folder_sets(cfg, cls)
    if name == "FakeData":
        train, test, classes = _fake_data_sets(cfg, cls, spec_input)
    else:
        train, test, classes = _named_dataset_sets(cfg, cls)
    return train, None, test, classes, ""


VAL_FOLDERS = ("val", "valid", "validation")  # the names a validation folder goes by
TEST_FOLDERS = ("test",)


@dataclass(frozen=True)
class FolderLayout:
    """Which folder under an ImageFolder root holds which split."""

    root: Path
    train: Path
    val: Path | None  # None: data.val_split of train is held out
    test: Path | None  # None: no test split

    def describe(self, val_split: float) -> str:
        train = f"{self.train}" + (" (a folder per class)" if self.train == self.root else "")
        if self.val is not None:
            val = f"{self.val}" + (" (data.val_split is not used)" if val_split else "")
        elif val_split:
            val = f"{val_split:.0%} of the train images, held out (data.val_split)"
        else:
            val = "none (data.val_split is 0)"
        if self.test is not None:
            test = f"{self.test}"
        elif self.train == self.root:
            test = (f"none (the classes in {self.root / 'train'}/ and {self.root / 'test'}/ "
                    "would give one)")
        else:
            test = "none (a test/ folder beside train/ would be one)"
        return f"splits: train = {train}, val = {val}, test = {test}"


def folder_layout(root: Path) -> FolderLayout:
    """The usual layouts: ``root/train`` with ``val/`` (or ``valid/``, ``validation/``)
    and/or ``test/`` beside it, each a folder per class; or ``root`` itself a folder per
    class.  ValueError, saying what to move, for a mix of the two."""
    folders = sorted(p.name for p in root.iterdir()
                     if p.is_dir() and not p.name.startswith((".", "_")))
    val = next((n for n in VAL_FOLDERS if n in folders), None)
    test = next((n for n in TEST_FOLDERS if n in folders), None)
    if "train" not in folders:
        if val or test:
            raise ValueError(
                f"{root} has {val or test}/ but no train/: put the training images in "
                f"{root / 'train'}/ (a folder per class) beside it")
        return FolderLayout(root, root, None, None)
    others = [f"{n}/" for n in folders if n not in ("train", val, test)]
    if others:
        raise ValueError(
            f"{root} holds train/ and also {', '.join(others[:5])}: beside train/ netspec "
            "takes only val/ (or valid/, validation/) and test/; put class folders inside "
            "train/ (and val/, test/), or point data.root at the folder of classes")
    return FolderLayout(root, root / "train", root / val if val else None,
                        root / test if test else None)


def _image_folder_sets(cfg: TrainConfig, cls: type) -> tuple[Any, Any, Any, list[str], str]:
    """(train, val or None, test or None, classes, which folder is which split)."""
    d = cfg.data
    root = Path(d.root)
    if not root.is_dir():
        raise cfg.error(
            ("data", "root"),
            f"ImageFolder: no folder {root} (one sub-folder "
            "per class; or train/ and val/ folders that each hold those)",
        )
    try:
        layout = folder_layout(root)
    except (OSError, ValueError) as exc:
        raise cfg.error(("data", "root"), f"ImageFolder: {exc}") from None
    sets = {}
    for key in ("train", "val", "test"):
        folder = getattr(layout, key)
        try:
            sets[key] = cls(str(folder), **d.args) if folder is not None else None
        except (OSError, RuntimeError, TypeError, ValueError) as exc:
            raise cfg.error(("data", "root"), f"ImageFolder {folder}: {exc}") from None
    _check_folder_classes(cfg, layout, sets)
    return (sets["train"], sets["val"], sets["test"], list(sets["train"].classes),
            layout.describe(d.val_split))


def _names(classes: list[str], show: int = 6) -> str:
    more = f", ... ({len(classes)} in all)" if len(classes) > show else ""
    return ", ".join(classes[:show]) + more


def _check_folder_classes(cfg: TrainConfig, layout: FolderLayout, sets: dict) -> None:
    """Two classes or more, and the same class folders in every split (ImageFolder numbers
    the labels of each folder by its own sorted class names)."""
    classes = list(sets["train"].classes)
    for key in ("train", "val", "test"):
        hidden = [c for c in (sets[key].classes if sets[key] is not None else ()) if
                  c.startswith(".")]
        if hidden:  # .ipynb_checkpoints/ and the like
            raise cfg.error(
                ("data", "root"),
                f"ImageFolder {getattr(layout, key)} holds {hidden[0]}/, which torchvision's "
                "ImageFolder would take as a class; remove it (only class folders there)",
            )
    if len(classes) < 2:
        raise cfg.error(
            ("data", "root"),
            f"ImageFolder {layout.train} holds one class folder ({classes[0]}/); a classifier "
            f"needs two or more, a folder of images per class: {layout.train / classes[0]}/, "
            f"{layout.train / 'other'}/, ...",
        )
    for key in ("val", "test"):
        if sets[key] is None or list(sets[key].classes) == classes:
            continue
        theirs = list(sets[key].classes)
        missing = [c for c in classes if c not in theirs]
        extra = [c for c in theirs if c not in classes]
        detail = "; ".join(
            part for part in (f"missing there: {_names(missing)}" if missing else "",
                              f"not in train/: {_names(extra)}" if extra else "") if part)
        raise cfg.error(
            ("data", "root"),
            f"ImageFolder {getattr(layout, key)} has the classes {_names(theirs)} but "
            f"{layout.train} has {_names(classes)} ({detail}); every split needs the same "
            "class folders, or its labels would mean other classes",
        )


def _fake_data_sets(
    cfg: TrainConfig, cls: type, spec_input: tuple[int, ...]
) -> tuple[Any, Any, list[str]]:
    """Random images of the spec's input shape; args size and test_size count them."""
    args = dict(cfg.data.args)
    size = args.pop("size", 1000)
    test_size = args.pop("test_size", max(1, size // 5))
    args.setdefault("image_size", tuple(spec_input))
    args["image_size"] = tuple(args["image_size"])
    try:
        train = cls(size=size, **args)
        test = cls(size=test_size, random_offset=size, **args)
    except (TypeError, ValueError) as exc:
        raise cfg.error(("data", "args"), f"FakeData: {exc}") from None
    return train, test, [str(i) for i in range(train.num_classes)]


def _named_dataset_sets(cfg: TrainConfig, cls: type) -> tuple[Any, Any | None, list[str] | None]:
    """A torchvision dataset class: its train and test splits, chosen by its train= or
    split= parameter (else one split, and no test set)."""
    import inspect

    import torchvision.datasets as tvd

    d = cfg.data
    name = d.name
    args = dict(d.args)
    params = inspect.signature(cls).parameters
    train_split, test_split = SPLIT_NAMES.get(name, ("train", "test"))
    common = {"root": d.root, **args}
    if "download" in params:
        common["download"] = d.download
    if "train" in params or issubclass(cls, tvd.MNIST):
        kinds = ({"train": True}, {"train": False})
    elif "split" in params and "split" not in args:
        kinds = ({"split": train_split}, {"split": test_split})
    else:
        kinds = ({}, None)
    try:
        train = cls(**common, **kinds[0])
        test = cls(**common, **kinds[1]) if kinds[1] is not None else None
    except TypeError as exc:
        raise cfg.error(("data", "args"), f"{name}: {exc}") from None
    except Exception as exc:  # missing files, no network, a corrupted archive
        raise cfg.error(("data", "name"), _missing_message(name, d.root, d.download, exc)) from None
    classes = getattr(train, "classes", None)
    return train, test, list(classes) if classes else None


def _explain(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) > 20 else f"{type(exc).__name__}: {text}"


def _list_hint(d: Any) -> str:
    listed = [e.name for e in (*d.augment, *d.transforms) if e.form == "positional"]
    if not listed:
        return ""
    return (
        f" (a list gives {listed[0]}'s positional arguments in order, as in torch: for a "
        f"size write {{{listed[0]}: {{size: [H, W]}}}})"
    )


def _missing_message(name: str, root: str, download: bool, exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not download:
        return (
            f"{name} is not under {os.path.abspath(root)} ({text}); set data.download: true "
            "(needs network) or data.root to the folder that holds it"
        )
    return (
        f"{name} could not be downloaded to {os.path.abspath(root)}: {text}. Without network, "
        f"copy the dataset's files there (as torchvision's {name} expects) and set "
        "data.download: false"
    )


def materialize(dataset: Any, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a whole dataset once into (x, y) tensors."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=512, shuffle=False, num_workers=workers
    )
    xs, ys = [], []
    for x, y in loader:
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs).contiguous(), torch.cat(ys).long()


def worker_count(cfg: TrainConfig) -> int:
    """train.data.workers; auto: a worker per core but one, at most 4."""
    if cfg.data.workers is not None:
        return cfg.data.workers
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _image_transforms(d: Any, transforms: Any, augment: Any) -> tuple[Any, Any]:
    """(train, eval) transforms: image -> float tensor in [0, 1], then the configured
    transforms, with augment on train only; (None, None) when there is nothing to do."""
    if d.name == "digits" and not transforms and not augment:
        return None, None  # (torchvision takes 2 s to import)
    from torchvision.transforms import v2

    to_tensor = [] if d.name == "digits" else [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    tf, aug = [transforms] if transforms else [], [augment] if augment else []
    eval_tf = v2.Compose([*to_tensor, *tf]) if (to_tensor or tf) else None
    train_tf = v2.Compose([*to_tensor, *aug, *tf])
    return train_tf, eval_tf


def _validation_split(n_train: int, d: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(indices kept for training, validation indices or None)."""
    keep, val_idx = _split_indices(n_train, d.val_split, d.split_seed)
    if len(val_idx) == 0:  # val_split 0, or a fraction too small to hold out a sample
        return keep, None
    return keep, val_idx


def _digits_splits(d: Any, transforms: Any, augment: Any) -> tuple[dict, Any, list[str]]:
    """(splits, sample shape, classes) of the digits: tensors already, so the deterministic
    transforms run once, batched."""
    x, y = digits_arrays()
    keep, test_idx = _split_indices(len(y), DIGITS_TEST_FRACTION, 0)
    train_x, train_y = x[keep], y[keep]
    train_tf, eval_tf = _image_transforms(d, transforms, augment)
    keep, val_idx = _validation_split(len(train_y), d)

    def held(key: str, sx: torch.Tensor, sy: torch.Tensor) -> Split:
        return Split(key, x=(eval_tf(sx) if eval_tf is not None else sx).contiguous(), y=sy)

    if d.in_memory is not False and not d.augment:
        train = held("train", train_x[keep], train_y[keep])
    else:
        base = Transformed(_Tensors(train_x, train_y), keep.tolist(), train_tf)
        train = Split("train", dataset=base)
    splits = {
        "train": train,
        "val": held("val", train_x[val_idx], train_y[val_idx]) if val_idx is not None else None,
        "test": held("test", x[test_idx], y[test_idx]),
    }
    sample = train.x.shape[1:] if train.in_memory else train.dataset[0][0].shape
    return splits, sample, [str(i) for i in range(10)]


def _first_sample_shape(cfg: TrainConfig, train: Transformed) -> tuple[int, ...]:
    """The shape of the first training sample, which shows a transform that does not fit."""
    d = cfg.data
    try:
        first = train[0][0]
    except Exception as exc:  # a transform that does not fit the images
        raise cfg.error(
            ("data", "transforms"),
            f"preparing a sample of {d.name} failed: {_explain(exc)}{_list_hint(d)}",
        ) from None
    if not isinstance(first, torch.Tensor):
        raise cfg.error(
            ("data", "transforms"),
            f"{d.name} samples are "
            f"{type(first).__name__} objects after the transforms, not tensors",
        )
    return tuple(first.shape)


def _held_in_memory(cfg: TrainConfig, key: str, dataset: Transformed) -> Split:
    try:
        x, y = materialize(dataset, worker_count(cfg))
    except RuntimeError as exc:
        raise cfg.error(
            ("data", "transforms"),
            f"{cfg.data.name} samples could not be "
            f"stacked into one tensor ({' '.join(str(exc).split())}); "
            "add a Resize transform so that they share a size",
        ) from None
    return Split(key, x=x, y=y)


def _classes_from_labels(train: Split, train_raw: Any) -> list[str]:
    """'0' .. the largest label, for a dataset that names no classes."""
    labels = (
        train.y
        if train.in_memory
        else torch.tensor(
            [int(t) for t in getattr(train_raw, "labels", getattr(train_raw, "targets", []))]
        )
    )
    return [str(i) for i in range(int(labels.max()) + 1)] if len(labels) else ["0"]


def _dataset_splits(
    cfg: TrainConfig, spec_input: tuple[int, ...], transforms: Any, augment: Any
) -> tuple[dict, tuple[int, ...], list[str], str]:
    """(splits, sample shape, classes, which split is which) of a torchvision dataset: held
    in memory when it fits (or in_memory: true), else streamed."""
    d = cfg.data
    train_raw, val_raw, test_raw, classes, which = _torchvision_sets(cfg, spec_input)
    train_tf, eval_tf = _image_transforms(d, transforms, augment)
    if val_raw is not None:  # a validation set of its own: nothing held out of train
        train_ds = Transformed(train_raw, None, train_tf)
        val_ds = Transformed(val_raw, None, eval_tf)
    else:
        keep, val_idx = _validation_split(len(train_raw), d)
        train_ds = Transformed(train_raw, keep.tolist(), train_tf)
        val_ds = Transformed(train_raw, val_idx.tolist(), eval_tf) if val_idx is not None else None
    datasets = {
        "train": train_ds,
        "val": val_ds,
        "test": Transformed(test_raw, None, eval_tf) if test_raw is not None else None,
    }
    sample = _first_sample_shape(cfg, datasets["train"])
    total = sum(len(s) for s in datasets.values() if s is not None)
    fits = total * math.prod(sample) * 4 <= MEMORY_LIMIT
    memory = d.in_memory is True or (d.in_memory == "auto" and fits and not d.augment)
    splits: dict[str, Split | None] = {}
    for key, ds in datasets.items():
        if ds is None:
            splits[key] = None
        elif memory:
            splits[key] = _held_in_memory(cfg, key, ds)
        else:
            splits[key] = Split(key, dataset=ds)
    if classes is None:
        classes = _classes_from_labels(splits["train"], train_raw)
    return splits, sample, classes, which


def prepare(cfg: TrainConfig, spec_input: tuple[int, ...], device: torch.device) -> Data:
    """The configured data as train/val/test splits on ``device`` (or streaming)."""
    d = cfg.data
    augment = build_transforms(cfg, d.augment)
    transforms = build_transforms(cfg, d.transforms)
    if d.in_memory is True and d.augment:
        raise cfg.error(
            ("data", "in_memory"),
            "train.data.in_memory: true cannot apply random "
            "augment transforms once for all epochs; set it to auto or false",
        )
    which = ""
    if d.name == "digits":
        splits, sample, classes = _digits_splits(d, transforms, augment)
    else:
        splits, sample, classes, which = _dataset_splits(cfg, spec_input, transforms, augment)
    for split in splits.values():
        if split is not None and split.in_memory:
            split.x = split.x.to(device)
            split.y = split.y.to(device)
    return Data(splits["train"], splits["val"], splits["test"], classes, tuple(sample), d.name,
                which)


# ------------------------------------------------------------------ batches


def batches(
    split: Split,
    plan: BatchPlan,
    device: torch.device,
    workers: int,
    generator: torch.Generator | None = None,
    loader_cache: dict | None = None,
):
    """Iterate (x, y) on ``device`` in the plan's order.  A streaming split's DataLoader
    (and its persistent workers) is kept in ``loader_cache`` under the split's name."""
    if split.in_memory:
        plan.device = split.x.device
        for idx in plan:
            yield split.x.index_select(0, idx), split.y.index_select(0, idx)
        return
    key = split.name
    loader = loader_cache.get(key) if loader_cache is not None else None
    if loader is None:
        loader = torch.utils.data.DataLoader(
            split.dataset,
            batch_sampler=_ListPlan(plan),
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
            generator=generator,
        )
        if loader_cache is not None:
            loader_cache[key] = loader
    non_blocking = device.type == "cuda"
    for x, y in loader:
        yield x.to(device, non_blocking=non_blocking), y.to(device, non_blocking=non_blocking)


def _output_problem(cfg: TrainConfig, data: Data, out: tuple[int, ...]) -> str | None:
    """What is wrong with the network's output for these classes and this loss, if anything:
    one score per class, exactly (more only with more_outputs_than_classes and a loss over
    class indices)."""
    from netspec.ops import fmt

    n, loss_name = len(data.classes), cfg.loss.name
    named = f"{data.name} has {n} classes ({_names(data.classes)})"
    if len(out) != 1:
        return (f"the network's output is {fmt(out)} per sample; classification needs one "
                f"score per class ({n} for {data.name}): end with Flatten and Linear")
    if out[0] < n:
        return (f"the network outputs {out[0]} scores per sample but {named}; the last layer "
                f"needs {n} outputs")
    if out[0] > n and loss_name not in ("CrossEntropyLoss", "NLLLoss"):
        return (f"the network outputs {out[0]} values but {loss_name} compares them with "
                f"one-hot targets of {n} classes")
    if out[0] > n and not cfg.more_outputs_than_classes:
        return (f"the network outputs {out[0]} scores per sample but {named}: the last layer "
                f"needs {n} outputs (e.g. out_features: {n}); to train {out[0]} outputs on "
                f"{n} classes anyway, set train.more_outputs_than_classes: true")
    return None


def check_shapes(cfg: TrainConfig, data: Data, spec: Any, result: Any) -> None:
    """The spec's input against a sample, its output against the classes and the loss:
    positioned in the spec."""
    from netspec.core.diagnostics import Diagnostic
    from netspec.ops import fmt

    doc, net = spec.doc, result.network
    problems = []

    def problem(path: tuple, message: str) -> None:
        problems.append(Diagnostic(doc.file, *doc.where(path), message))

    if net.inputs and len(net.inputs) > 1:
        problem(("inputs",), f"netspec train feeds one tensor (images) to a model, but this "
                f"one takes {len(net.inputs)} inputs ({', '.join(i.name for i in net.inputs)});"
                " train it with your own loop on the built model (netspec.build)")
    if net.outputs and len([o for o in net.outputs if not o.training_only]) > 1:
        problem(("outputs",), "netspec train computes its loss on one output, but this model "
                "returns several in eval; keep one output (the others training_only) or "
                "train it with your own loop")
    elif any(o.training_only for o in net.outputs):
        problem(("outputs",), "netspec train computes its loss on one output, but this model "
                "returns its training_only outputs too in training (GoogLeNet's aux heads "
                "weigh in its loss); train it with your own loop, or drop them")
    if not problems and tuple(net.input_shape) != tuple(data.sample_shape):
        problem(
            ("input",),
            f"input is {fmt(net.input_shape)} but {data.name} samples are "
            f"{fmt(data.sample_shape)} (after the transforms); write input: "
            f"{list(data.sample_shape)}, or add a transform (Resize, Grayscale, ...) to "
            "train.data.transforms",
        )
    if not net.input_dtype.startswith(("float", "bfloat")):
        problem(
            ("input",),
            f"netspec train feeds images as float tensors; input dtype {net.input_dtype} "
            "cannot take them",
        )
    out = result.output_shape
    if out is not None and not problems:
        message = _output_problem(cfg, data, out)
        if message:
            problem(("layers", len(result.layers) - 1), message)
    if problems:
        raise ConfigError(problems)

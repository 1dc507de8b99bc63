"""``netspec eval`` and ``netspec predict``: the tutorial's "test the network" steps.

Both take the spec and a weights file: a netspec checkpoint (``best.pt``, ``last.pt``; its
spec hash must match the spec, and its data settings, transforms and class names are used)
or a plain ``torch.save(model.state_dict())`` file.  Either loads on the CPU whatever device
saved it, with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from netspec.emit import checkpoint as ckpt_io
from netspec.train import components, config, distributed
from netspec.train import data as data_mod
from netspec.train import device as dev


def _setup(
    spec: Any, weights: str | os.PathLike, config_files: list[str], overrides: Any
) -> tuple[Any, Any, config.TrainConfig, dict[str, Any], Any, dev.Placement]:
    from netspec.emit.build import build

    spec, result = config.checked_spec(spec)
    model = build(result)
    state = ckpt_io.load_weights(model, weights, result, spec.file)
    # the checkpoint's loss and data settings come after the spec's train section, before
    # the config files and the command line
    trained: list = []
    saved = state.get("config") or {}
    origin = (f"{weights} (its training configuration)", 1, 1)
    for key in ("loss", "more_outputs_than_classes"):  # what the output was trained for
        if key in saved:
            trained.append(((key,), saved[key], origin))
    for key, value in (saved.get("data") or {}).items():
        if key not in ("workers", "in_memory"):
            trained.append((("data", key), value, origin))
    docs = [config.load_config_file(p) for p in config_files]
    cfg = config.resolve(spec.doc, docs, config.overrides_list(overrides), saved=trained)
    device = dev.choose_device(cfg)
    place = dev.placement(cfg, device, len(result.network.input_shape))
    model = model.to(device)
    if place.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.eval()
    return spec, result, cfg, state, model, place


def evaluate(
    spec: Any,
    weights: str | os.PathLike,
    split: str = "test",
    config_files: list[str] = (),
    overrides: Any = None,
) -> dict[str, Any]:
    """Loss, top-1 and top-5 accuracy of ``weights`` on a split of the configured data."""
    from netspec.train.loop import eval_plan, evaluate_split

    spec, result, cfg, state, model, place = _setup(spec, weights, config_files, overrides)
    data = data_mod.prepare(cfg, tuple(result.network.input_shape), place.device)
    data_mod.check_shapes(cfg, data, spec, result)
    chosen = getattr(data, split)
    if chosen is None:
        others = [s for s in ("train", "val", "test") if getattr(data, s) is not None]
        raise cfg.error(
            ("data",), f"{data.name} has no {split} split here (it has {', '.join(others)})"
        )
    loss = components.build_loss(cfg).to(place.device)
    ctx = distributed.Context()
    metrics = evaluate_split(
        model,
        model,
        chosen,
        eval_plan(len(chosen), cfg.eval_batch_size, ctx),
        loss,
        place,
        ctx,
        components.targets_for(cfg.loss.name),
        len(data.classes),
        data_mod.worker_count(cfg),
        {},
    )
    return {"split": split, "weights": str(weights), "epoch": state.get("epoch"), **metrics}


def load_image(path: str | os.PathLike, shape: tuple[int, ...]) -> torch.Tensor:
    """An image file as a float tensor in [0, 1] with the spec's channels and size."""
    from PIL import Image
    from torchvision.transforms import v2

    channels = shape[0] if len(shape) == 3 else 1
    with Image.open(path) as img:
        img = img.convert({1: "L", 3: "RGB", 4: "RGBA"}.get(channels, "RGB"))
        x = v2.functional.to_image(img)
    return v2.functional.to_dtype(x, torch.float32, scale=True)


def _class_name(classes: list[str] | None, index: int) -> str:
    """The class of an output; an output beyond the classes (a head trained with
    more_outputs_than_classes) says it has none."""
    if not classes:
        return str(index)
    return classes[index] if index < len(classes) else f"{index} (no class)"


def predict(
    spec: Any,
    weights: str | os.PathLike,
    images: list[str],
    top_k: int = 5,
    config_files: list[str] = (),
    overrides: Any = None,
) -> list[dict[str, Any]]:
    """Per image file: the top-k classes with their probabilities."""
    from torchvision.transforms import v2

    spec, result, cfg, state, model, place = _setup(spec, weights, config_files, overrides)
    shape = tuple(result.network.input_shape)
    transform = components.build_transforms(cfg, cfg.data.transforms)
    classes = state.get("classes") or (
        [str(i) for i in range(10)] if cfg.data.name == "digits" else None
    )
    batch = []
    for path in images:
        try:
            x = load_image(path, shape)
        except (OSError, ValueError) as exc:
            raise ckpt_io.CheckpointError(f"{path}: not a readable image ({exc})") from None
        if len(shape) == 3 and tuple(x.shape[-2:]) != shape[-2:]:
            x = v2.functional.resize(x, list(shape[-2:]), antialias=True)
        if transform is not None:
            x = transform(x)
        if tuple(x.shape) != shape:
            raise ckpt_io.CheckpointError(
                f"{path}: the image becomes {tuple(x.shape)} after the "
                f"transforms, the spec's input is {shape}"
            )
        batch.append(x)
    with torch.inference_mode(), place.autocast():
        out = model(place.prepare_input(torch.stack(batch).to(place.device))).float()
    if cfg.loss.name == "NLLLoss":
        probs = out.exp()
    elif cfg.loss.name in ("BCEWithLogitsLoss", "MultiLabelSoftMarginLoss"):
        probs = out.sigmoid()
    else:
        probs = out.softmax(-1)
    k = min(top_k, probs.shape[-1])
    values, indices = probs.topk(k, dim=-1)
    rows = []
    for path, vs, ix in zip(images, values.tolist(), indices.tolist(), strict=True):
        top = [
            {"index": i, "class": _class_name(classes, i), "prob": v}
            for v, i in zip(vs, ix, strict=True)
        ]
        rows.append({"file": str(Path(path)), "top": top})
    return rows

"""Checkpoints: complete, atomic, verified, portable.

A checkpoint (``last.pt``, ``best.pt``) is one ``torch.save`` of plain data: the model,
optimizer, scheduler and grad-scaler states, the epoch and step (and, after Ctrl-C, the
position inside the epoch and its running sums), every RNG state, the metrics so far, the
effective configuration, the class names, and the spec's text, name and hash.

- Written atomically: a temporary file in the same folder, flushed and fsync'ed, renamed
  over the old one, the folder fsync'ed; a crash leaves the previous checkpoint whole.
  ``best.pt`` is a hard link to the ``last.pt`` it was (a copy where links are refused).
- Every tensor is moved to the CPU before saving, so it loads anywhere; loading uses
  ``weights_only=True`` (no code runs) and ``map_location="cpu"``.
- A digest of the content is stored inside and checked on load: a truncated or corrupted
  file is refused with a clear message instead of silently loading damaged weights
  (PyTorch's zip reader does not check the data it reads).
- The spec hash covers what the weights depend on (each layer's name, type and resolved
  arguments, and the input), not comments or the train section: a checkpoint from another
  network is refused with an error naming both specs and the first layer that differs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from .config import CheckpointError

FORMAT = "netspec-checkpoint"
VERSION = 1


# ------------------------------------------------------------------ the spec's identity


def spec_layers(result: Any) -> list[dict[str, Any]]:
    """What the weights depend on, layer by layer (from a CheckResult)."""
    return [{"name": r.name, "type": r.type, "args": _jsonable(r.kwargs)} for r in result.layers]


def spec_hash(result: Any) -> str:
    net = result.network
    identity = {
        "input": list(net.input_shape),
        "dtype": net.input_dtype,
        "layers": spec_layers(result),
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return repr(value)


def check_same_spec(ckpt: dict[str, Any], path: str | Path, result: Any, spec_file: str) -> None:
    if ckpt.get("spec_hash") == spec_hash(result):
        return
    theirs = ckpt.get("spec_layers") or []
    ours = spec_layers(result)
    detail = ""
    for i, (a, b) in enumerate(zip(theirs, ours, strict=False)):
        if a != b:
            detail = (
                f"; layer {i} differs: {_layer_text(a)} in the checkpoint, "
                f"{_layer_text(b)} in {spec_file}"
            )
            break
    else:
        if len(theirs) != len(ours):
            detail = (
                f"; the checkpoint's network has {len(theirs)} layers, {spec_file}'s {len(ours)}"
            )
        else:
            detail = "; the input differs"
    raise CheckpointError(
        f"{path} was trained from spec '{ckpt.get('spec_name')}' ({ckpt.get('spec_file')}, hash "
        f"{str(ckpt.get('spec_hash'))[:12]}) but this is '{result.network.name}' ({spec_file}, "
        f"hash {spec_hash(result)[:12]}){detail}"
    )


def _layer_text(layer: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v}" for k, v in layer.get("args", {}).items())
    return f"{layer.get('name')}: {layer.get('type')}({args})"


# ------------------------------------------------------------------ content digest


def digest(obj: Any) -> str:
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    import torch

    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k, v in obj.items():
            h.update(repr(k).encode())
            _feed(h, v)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[" if isinstance(obj, list) else b"(")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def to_cpu(obj: Any) -> Any:
    """Tensors moved to the CPU, str subclasses (torch.__version__) made plain: what
    ``weights_only`` loading accepts."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, dict):
        return type(obj)((k, to_cpu(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_cpu(v) for v in obj)
    return obj


# ------------------------------------------------------------------ files


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def save(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` atomically, with its digest, all tensors on the CPU."""
    import torch

    path = Path(path)
    payload = to_cpu(state)
    payload["format"], payload["version"] = FORMAT, VERSION
    payload.pop("digest", None)
    payload["digest"] = digest(payload)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def link_best(last: str | Path, best: str | Path) -> None:
    """``best`` becomes the checkpoint ``last`` is now, atomically."""
    last, best = Path(last), Path(best)
    tmp = best.with_name(f".{best.name}.tmp-{os.getpid()}")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(last, tmp)
    except OSError:
        shutil.copyfile(last, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, best)
    _fsync_dir(best.parent)


def load(path: str | Path) -> dict[str, Any]:
    """A checkpoint's content (on the CPU), verified; CheckpointError if unusable."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    size = path.stat().st_size
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = " ".join(str(exc).split())
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if refused:
            raise CheckpointError(
                f"{path} holds a Python object ({refused.group(1)}) beyond tensors and plain "
                "data; netspec loads checkpoints with weights_only=True and runs no code from "
                "a file"
            ) from None
        first = text.split(". ")[0]
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({size:,} bytes; truncated or corrupted?): "
            f"{first}. Delete it, or resume from another checkpoint (best.pt, or the run's "
            "last.pt before the damage)"
        ) from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        stored = obj.pop("digest", None)
        if stored is not None and digest(obj) != stored:
            raise CheckpointError(
                f"{path} is corrupted: its content does not match the digest stored in it "
                "(damaged on disk or in a copy); use another checkpoint"
            )
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": obj}  # a plain state_dict (torch.save(model.state_dict()))
    raise CheckpointError(f"{path} is neither a netspec checkpoint nor a model state_dict")


class WeightsMismatch(CheckpointError):
    """A readable checkpoint whose weights are not this spec's."""


def load_weights(model: Any, path: str | Path, result: Any, spec_file: str) -> dict[str, Any]:
    """Load a checkpoint (a run folder: its last.pt) or a plain state_dict into ``model``,
    strictly; returns the checkpoint.  A checkpoint's spec hash must match ``result`` (the
    spec checked at its own input).  CheckpointError if the file cannot be used,
    WeightsMismatch if it is not this spec's."""
    state = load(path)
    if "spec_hash" in state:
        try:
            check_same_spec(state, path, result, spec_file)
        except CheckpointError as exc:
            raise WeightsMismatch(str(exc)) from None
    loaded = state.get("model")
    if not isinstance(loaded, dict):
        raise WeightsMismatch(f"{path} holds no model weights")
    problems = state_dict_mismatch(model.state_dict(), loaded)
    if problems:
        raise WeightsMismatch(f"{path} does not fit {spec_file}: {problems}")
    model.load_state_dict(loaded, strict=True)
    return state


def state_dict_mismatch(ours: dict[str, Any], theirs: dict[str, Any], show: int = 8) -> str:
    """'' when ``theirs`` loads strictly into a model whose state_dict is ``ours``; else
    which keys are missing, unexpected or of another shape."""
    from ..layers import fmt

    def listing(keys: list[str]) -> str:
        more = f", ... ({len(keys)} in all)" if len(keys) > show else ""
        return ", ".join(keys[:show]) + more

    def shape(t: Any) -> str:
        return fmt(tuple(getattr(t, "shape", ())))

    missing = [k for k in ours if k not in theirs]
    unexpected = [k for k in theirs if k not in ours]
    shapes = [
        f"{k} is {shape(theirs[k])} in the file, {shape(ours[k])} in the spec"
        for k in ours
        if k in theirs and tuple(getattr(theirs[k], "shape", ())) != tuple(ours[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing keys: {listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {listing(unexpected)}")
    if shapes:
        parts.append(f"shape mismatch: {listing(shapes)}")
    return "; ".join(parts)


def remove_stale_temporaries(folder: str | Path) -> None:
    """Temporary files a killed process left behind."""
    for tmp in Path(folder).glob(".*.pt.tmp-*"):
        try:
            tmp.unlink()
        except OSError:  # pragma: no cover
            pass

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


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message says why and what to do."""


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
    theirs = ckpt.get("spec_layers")
    if not isinstance(theirs, list) or not all(isinstance(a, dict) for a in theirs):
        theirs = []  # a hand-made checkpoint: the hash alone says it differs
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
    args = layer.get("args")
    args = ", ".join(f"{k}={v}" for k, v in args.items()) if isinstance(args, dict) else ""
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


class WriteError(CheckpointError):
    """A file of the run could not be written (a full disk, a read-only folder, ...); what
    was written before is whole."""


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: torch.save reports a failed write as a RuntimeError
    ("unexpected pos ...") raised while handling the file object's OSError."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def cannot_write(path: Path, exc: BaseException, kept: str = "") -> WriteError:
    """The one-line error for a failed write of ``path``; ``kept`` says what is still whole."""
    cause = _os_error(exc)
    reason = (cause.strerror or str(cause)) if cause is not None else " ".join(str(exc).split())
    reason = reason[:1].lower() + reason[1:]
    return WriteError(f"cannot write {path}: {reason}" + (f"; {kept}" if kept else ""))


def save(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` atomically, with its digest, all tensors on the CPU.  WriteError
    when it cannot be written (the previous file at ``path`` stays whole)."""
    import torch

    path = Path(path)
    payload = to_cpu(state)
    payload["format"], payload["version"] = FORMAT, VERSION
    payload.pop("digest", None)
    payload["digest"] = digest(payload)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        try:
            with open(tmp, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    except (OSError, RuntimeError) as exc:
        kept = (f"the previous {path.name} is whole (resume from it with netspec train "
                f"--resume {path.parent} once there is room)" if path.is_file()
                else "nothing was saved")
        raise cannot_write(path, exc, kept) from None
    _fsync_dir(path.parent)


def link_best(last: str | Path, best: str | Path) -> None:
    """``best`` becomes the checkpoint ``last`` is now, atomically (WriteError if it
    cannot: the previous ``best`` stays whole)."""
    last, best = Path(last), Path(best)
    tmp = best.with_name(f".{best.name}.tmp-{os.getpid()}")
    try:
        try:
            if tmp.exists():
                tmp.unlink()
            try:
                os.link(last, tmp)
            except OSError:
                shutil.copyfile(last, tmp)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, best)
        finally:
            if tmp.exists():
                tmp.unlink()
    except OSError as exc:
        kept = f"{last} is whole; the previous {best.name} too" if best.is_file() else ""
        raise cannot_write(best, exc, kept) from None
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


def weights_source(path: str | Path) -> Path:
    """The checkpoint ``netspec weights`` reads: the file, or a run folder's best.pt (its
    last.pt when no epoch was evaluated)."""
    path = Path(path)
    if path.is_dir():
        best = path / "best.pt"
        return best if best.is_file() else path / "last.pt"
    return path


def checkpoint_spec_text(source: str | Path) -> str | None:
    """The spec a checkpoint (or a run folder's best.pt) was trained from, as written."""
    state = load(weights_source(source))
    text = state.get("spec_text")
    return text if isinstance(text, str) else None


def save_weights(source: str | Path, dest: str | Path | None = None,
                 renames: dict[str, str] | None = None) -> dict[str, Any]:
    """The model weights of a checkpoint (or a run folder) as a plain state_dict file:
    what ``model.load_state_dict(torch.load(dest))`` loads, in the built model and in the
    generated code alike (the same keys).  Tensors are made contiguous (a run trained in
    channels_last keeps no trace of it).  ``dest`` defaults to ``<stem>_weights.pt`` beside
    the checkpoint.  ``renames`` ({"0": "conv1"}) renames the keys' first part, for a
    generated file that names what netspec.build numbers.  Returns what was written: the
    file, the checkpoint, its epoch, the number of tensors and of values."""
    import torch

    source = weights_source(source)
    state = load(source)
    weights = state.get("model")
    problem = _state_dict_problem(weights)
    if problem:
        raise CheckpointError(f"{source}: its model weights {problem}")
    dest = Path(dest) if dest is not None else source.with_name(f"{source.stem}_weights.pt")
    if dest.is_dir():
        dest = dest / f"{source.stem}_weights.pt"
    if dest.resolve() == source.resolve():
        raise CheckpointError(f"{dest} is the checkpoint itself; write the weights elsewhere")
    renames = renames or {}
    plain = {_renamed(k, renames): v.contiguous() for k, v in weights.items()}
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        try:
            torch.save(plain, tmp)
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                tmp.unlink()
    except (OSError, RuntimeError) as exc:
        raise cannot_write(dest, exc, "nothing was written") from None
    return {"weights": str(dest), "checkpoint": str(source), "epoch": state.get("epoch"),
            "spec_name": state.get("spec_name"), "tensors": len(plain),
            "values": sum(t.numel() for t in plain.values())}


def _renamed(key: str, renames: dict[str, str]) -> str:
    head, dot, rest = key.partition(".")
    return renames.get(head, head) + dot + rest


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
    problems = _state_dict_problem(loaded)
    problems = (f"its weights {problems}" if problems
                else state_dict_mismatch(model.state_dict(), loaded))
    if problems:
        raise WeightsMismatch(f"{path} does not fit {spec_file}: {problems}")
    try:
        model.load_state_dict(loaded, strict=True)
    except (RuntimeError, ValueError, TypeError) as exc:  # e.g. a dtype that cannot be cast
        raise WeightsMismatch(f"{path} does not load into {spec_file}: "
                              f"{' '.join(str(exc).split())}") from None
    return state


def state_dict_mismatch(ours: dict[str, Any], theirs: dict[str, Any], show: int = 8) -> str:
    """'' when ``theirs`` loads strictly into a model whose state_dict is ``ours``; else
    which keys are missing, unexpected or of another shape."""
    from netspec.ops import fmt

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


# ------------------------------------------------------------------ what --resume needs

# A netspec checkpoint carries these; hand-made or damaged ones (which carry no digest, or
# a digest of their own damage) are checked key by key before anything of them is used, so
# that a wrong one gets one line naming the file and the key instead of a traceback from
# deep inside the loop.


def _kind(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    text = repr(value)
    short = 16 if isinstance(value, (dict, list)) else 40  # a value, not a listing
    if len(text) <= short:
        return text
    return f"a {type(value).__name__}"


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalars(value: Any, dtypes: str) -> bool:
    """A non-empty list of one-element tensors (one per process) of floating or integer
    dtype, as an interrupted epoch's running sums are saved."""
    import torch

    return (isinstance(value, list) and bool(value)
            and all(isinstance(t, torch.Tensor) and t.numel() == 1
                    and (t.is_floating_point() if dtypes == "float" else
                         not t.is_floating_point() and not t.is_complex())
                    for t in value))


def _state_dict_problem(value: Any) -> str | None:
    import torch

    if not isinstance(value, dict):
        return f"is {_kind(value)}, not a state_dict (a mapping of names to tensors)"
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            return f"holds {k!r}: {_kind(v)}; a state_dict maps names to tensors"
    return None


def _optimizer_shape_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"is {_kind(value)}, not an optimizer state_dict"
    state, groups = value.get("state"), value.get("param_groups")
    if not isinstance(state, dict):
        return f"has 'state' {_kind(state)}, not a mapping of parameter numbers to states"
    if not isinstance(groups, list) or not groups:
        return f"has 'param_groups' {_kind(groups)}, not a list of parameter groups"
    for i, g in enumerate(groups):
        if not isinstance(g, dict) or not isinstance(g.get("params"), list) \
                or not all(_whole(p) for p in g["params"]):
            return f"has a parameter group {i} without a list of parameter numbers"
    for k, v in state.items():
        if not _whole(k) or not isinstance(v, dict):
            return f"has a state entry {k!r}: {_kind(v)}, not a parameter's state"
    return None


def _position_problem(pos: Any) -> str | None:
    """An interrupted epoch: where it stopped and its running sums, one per process."""
    if not isinstance(pos, dict):
        return f"is {_kind(pos)}, not the position inside an interrupted epoch"
    for key, test, what in (
        ("epoch", lambda v: _whole(v) and v >= 1, "an epoch number"),
        ("batch", lambda v: _whole(v) and v >= 0, "a batch number"),
        ("loss_sum", lambda v: _scalars(v, "float"), "a list of one-number float tensors"),
        ("correct", lambda v: _scalars(v, "int"), "a list of one-number integer tensors"),
        ("seen", lambda v: isinstance(v, list) and v and all(_whole(n) for n in v),
         "a list of sample counts"),
        ("time", _number, "seconds"),
        ("lr", _number, "a learning rate"),
    ):
        if key not in pos:
            return f"has no '{key}'"
        if not test(pos[key]):
            return f"has '{key}' {_kind(pos[key])}, not {what}"
    if not len(pos["loss_sum"]) == len(pos["correct"]) == len(pos["seen"]):
        return "has running sums for different numbers of processes"
    return None


def _history_problem(rows: Any) -> str | None:
    if not isinstance(rows, list):
        return f"is {_kind(rows)}, not a list of epoch rows"
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, (int, float, str)))
                for k, v in row.items()):
            return f"row {i} is not a mapping of names to numbers (metrics.jsonl's rows)"
    return None


def _best_problem(best: Any) -> str | None:
    if not isinstance(best, dict):
        return f"is {_kind(best)}, not {{acc, epoch}}"
    if not (best.get("acc") is None or _number(best.get("acc"))) or not _whole(best.get("epoch")):
        return f"is {best!r}, not {{acc: a number or None, epoch: a whole number}}"
    return None


def _rng_problem(rngs: Any) -> str | None:
    import torch

    if not isinstance(rngs, list):
        return f"is {_kind(rngs)}, not a list of random generator states (one per process)"
    for i, r in enumerate(rngs):
        if not isinstance(r, dict) or not isinstance(r.get("torch"), torch.Tensor):
            return f"entry {i} is {_kind(r)}, not a random generator state with a 'torch' tensor"
    return None


# key -> (needed, problem of its value or None); optional keys may be absent or None
RESUME_FIELDS: dict[str, tuple[bool, Any]] = {
    "model": (True, _state_dict_problem),
    "optimizer": (True, _optimizer_shape_problem),
    "epoch": (True, lambda v: None if _whole(v) and v >= 0 else
              f"is {_kind(v)}, not a whole number of epochs"),
    "step": (True, lambda v: None if _whole(v) and v >= 0 else
             f"is {_kind(v)}, not a whole number of steps"),
    "scheduler": (False, lambda v: None if isinstance(v, dict) else
                  f"is {_kind(v)}, not a scheduler state_dict"),
    "scaler": (False, lambda v: None if isinstance(v, dict) else
               f"is {_kind(v)}, not a gradient scaler state_dict"),
    "position": (False, _position_problem),
    "rng": (False, _rng_problem),
    "history": (False, _history_problem),
    "best": (False, _best_problem),
    "elapsed": (False, lambda v: None if _number(v) else f"is {_kind(v)}, not seconds"),
}


def resume_error(path: str | Path, problem: str) -> CheckpointError:
    return CheckpointError(f"{path} cannot be resumed from: {problem}")


def check_resumable(state: dict[str, Any], path: str | Path) -> None:
    """CheckpointError naming the first key of ``state`` (a loaded checkpoint) that is
    missing or not what ``--resume`` uses it as."""
    if "optimizer" not in state:
        raise CheckpointError(
            f"{path} holds weights only; --resume needs a checkpoint from netspec train "
            "(last.pt)"
        )
    for key, (needed, problem_of) in RESUME_FIELDS.items():
        if key not in state or (state[key] is None and not needed):
            if needed:
                raise resume_error(path, f"it has no '{key}'")
            continue
        problem = problem_of(state[key])
        if problem:
            raise resume_error(path, f"'{key}' {problem}")
    position = state.get("position")
    if position is not None and position["epoch"] != state["epoch"] + 1:
        raise resume_error(path, f"'position' is inside epoch {position['epoch']}, but the "
                           f"checkpoint is at the end of epoch {state['epoch']}")


def _public_keys(state: dict[str, Any]) -> set[str]:
    # private entries (_step_count, _last_lr, ...) and the deprecated verbose come and go
    # with torch versions; the rest are a scheduler kind's own arguments and counters
    return {k for k in state if isinstance(k, str) and not k.startswith("_") and k != "verbose"}


def optimizer_problem(theirs: dict[str, Any], optimizer: Any, name: str) -> str | None:
    """Why the optimizer state ``theirs`` is not one for ``optimizer`` (of class ``name``):
    other parameter groups or sizes, another optimizer's settings, states of other shapes."""
    ours = optimizer.state_dict()
    mine, other = ours["param_groups"], theirs["param_groups"]
    sizes = ["+".join(str(len(g["params"])) for g in gs) for gs in (other, mine)]
    if sizes[0] != sizes[1]:
        return (f"its optimizer state is for {len(other)} parameter group(s) of {sizes[0]} "
                f"parameters; this network's {name} has {len(mine)} of {sizes[1]} "
                "(another network's optimizer?)")
    for g_ours, g_theirs in zip(mine, other, strict=True):
        foreign = sorted(set(g_theirs) - set(g_ours))
        if foreign:  # settings only another optimizer has (keys torch added later are fine)
            return (f"its optimizer state is not {name}'s: its parameter groups set "
                    f"{', '.join(foreign)}, which {name} does not have")
    params = {}
    for g_live, g_theirs in zip(optimizer.param_groups, other, strict=True):
        params.update(zip(g_theirs["params"], g_live["params"], strict=True))
    for key, per_param in theirs["state"].items():
        if key not in params:
            return f"its optimizer state names parameter {key}, which no group holds"
        if name == "LBFGS":  # its state is one flat history over all parameters
            continue
        shape = tuple(params[key].shape)
        for field, value in per_param.items():
            got = tuple(getattr(value, "shape", ()))
            if got and got != shape:
                return (f"its optimizer state '{field}' of parameter {key} has shape {got}, "
                        f"the parameter {shape}")
    return None


def scheduler_problem(theirs: dict[str, Any] | None, scheduler: Any, name: str | None,
                      groups: int) -> str | None:
    """Why ``theirs`` cannot continue the configured ``scheduler`` (``name``; None: none)."""
    if scheduler is None:
        return (None if theirs is None else "it holds a learning-rate scheduler's state, but "
                "this run has no scheduler (resume with the one it was trained with)")
    if theirs is None:
        return (f"it holds no scheduler state, but this run is configured with {name} (resume "
                "with the configuration it was trained with)")
    ours = scheduler.state_dict()
    mine, other = _public_keys(ours), _public_keys(theirs)
    if mine != other:
        extra, missing = sorted(other - mine), sorted(mine - other)
        detail = "; ".join(part for part in (
            f"it sets {', '.join(extra)}" if extra else "",
            f"it lacks {', '.join(missing)}" if missing else "") if part)
        return f"its scheduler state is not {name}'s ({detail})"
    lrs = theirs.get("base_lrs")
    if lrs is not None and (not isinstance(lrs, list) or len(lrs) != groups):
        count = f"{len(lrs)} values" if isinstance(lrs, list) else _kind(lrs)
        return f"its scheduler's base_lrs is {count}, not one per parameter group ({groups})"
    return None


def remove_stale_temporaries(folder: str | Path) -> None:
    """Temporary files a killed process left behind."""
    for tmp in Path(folder).glob(".*.pt.tmp-*"):
        try:
            tmp.unlink()
        except OSError:  # pragma: no cover
            pass

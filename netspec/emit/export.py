"""``netspec export``: a spec (and optionally its trained weights) as a deployable file.

Three formats, each written, read back and checked against the PyTorch model:

- ``onnx`` (``.onnx``): ``torch.onnx.export`` with the dynamo exporter (its default opset,
  20 with torch 2.9 and later; ``opset`` chooses another, 17 at least), then
  ``onnx.checker``, then onnxruntime against PyTorch.
- ``torchscript`` (``.ts``, ``.torchscript``): ``torch.jit.script`` and ``torch.jit.save``.
  RNN/LSTM/GRU children (netspec's subclasses that keep only the output, which TorchScript
  cannot compile) are traced on their own inside the scripted model; the whole model is
  traced only if scripting fails, and the report says so.
- ``exported-program`` (``.pt2``): ``torch.export.export`` and ``torch.export.save``.

The batch dimension is dynamic unless ``batch_dynamic=False`` (then it is fixed at
``batch``).  Verification runs a random input at two batch sizes (2 and 3 by default: the
second proves the batch is really dynamic) through the PyTorch model and the reloaded file
and reports the largest absolute difference; beyond ``atol`` (1e-4) it fails."""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMATS = ("onnx", "torchscript", "exported-program")
SUFFIXES = {
    ".onnx": "onnx",
    ".ts": "torchscript",
    ".torchscript": "torchscript",
    ".pt2": "exported-program",
}
ALIASES = {"ts": "torchscript", "jit": "torchscript", "pt2": "exported-program",
           "export": "exported-program", "exported_program": "exported-program"}
ATOL = 1e-4
MIN_OPSET = 17


class ExportError(Exception):
    """An export that cannot be done or did not verify.  ``status`` is the exit status the
    command line gives: 2 for an unreadable file or bad usage, 1 otherwise."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


@dataclass
class ExportReport:
    format: str
    path: Path
    method: str  # how the file was made: "... dynamo exporter, opset 20", "torch.jit.script"
    batch_dynamic: bool
    bytes: int = 0
    seconds: float = 0.0
    differences: dict[int, float] = field(default_factory=dict)  # batch -> max |difference|
    notes: list[str] = field(default_factory=list)
    scale: float = 0.0  # the largest |output| of PyTorch's verification runs
    files: list[Path] = field(default_factory=list)  # written beside path (ONNX external data)
    atol: float = ATOL

    @property
    def ok(self) -> bool:
        return all(d <= self.atol for d in self.differences.values())

    @property
    def max_difference(self) -> float:
        return max(self.differences.values(), default=0.0)


def format_for(fmt: str | None, path: str | os.PathLike) -> str:
    """The format named by ``fmt``, or else by the output file's suffix."""
    if fmt:
        name = ALIASES.get(fmt.lower(), fmt.lower())
        if name not in FORMATS:
            raise ExportError(f"unknown format '{fmt}': use {', '.join(FORMATS)}", 2)
        return name
    suffix = Path(path).suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    known = ", ".join(f"{s} ({f})" for s, f in SUFFIXES.items())
    raise ExportError(
        f"cannot tell the format from '{Path(path).name}': name it with --format "
        f"({', '.join(FORMATS)}) or use a suffix: {known}", 2
    )


# ------------------------------------------------------------------ model and weights


def _check(spec: Any, input_shape: tuple[int, ...] | None) -> Any:
    from netspec.core.diagnostics import SpecError
    from netspec.pipeline.check import check

    result = check(spec, input_shape)
    if not result.ok:
        raise SpecError(result.errors)
    return result


def load_weights(model: Any, weights: str | os.PathLike, spec: Any, result: Any) -> None:
    """train.checkpoint.load_weights with export's exit statuses: ExportError (status 2) if
    the file cannot be read, (status 1) if the weights do not fit."""
    from netspec.emit import checkpoint as ckpt_io
    from netspec.emit.checkpoint import CheckpointError

    if not Path(weights).exists():
        raise ExportError(f"cannot read weights {weights}: no such file", 2)
    try:
        ckpt_io.load_weights(model, weights, result, spec.file)
    except ckpt_io.WeightsMismatch as exc:
        raise ExportError(str(exc)) from None
    except CheckpointError as exc:
        raise ExportError(str(exc), 2) from None
    except OSError as exc:
        raise ExportError(f"cannot read weights {weights}: {exc.strerror or exc}", 2) from None


def example_input(result: Any, batch: int, seed: int = 0) -> Any:
    """A random input of the spec's shape and dtype (its first, where it names several)."""
    return example_inputs(result, batch, seed)[0]


def example_inputs(result: Any, batch: int, seed: int = 0) -> tuple:
    """A random batch for each of the network's inputs, of its shape and dtype; token ids
    stay below every bound an op declares on its int input (Embedding's
    ``num_embeddings``)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for spec_input in result.network.all_inputs:
        dtype = getattr(torch, spec_input.dtype)
        shape = (batch, *spec_input.shape)
        if dtype.is_floating_point:
            out.append(torch.randn(shape, generator=g).to(dtype))
        else:
            out.append(torch.randint(0, _index_bound(result), shape, generator=g, dtype=dtype))
    return tuple(out)


def _input_names(result: Any) -> list[str]:
    net = result.network
    return [i.name for i in net.inputs] or ["input"]


def _output_names(result: Any) -> list[str]:
    """The ONNX outputs: the eval outputs by key (a lone one, and a network without
    outputs:, is named output)."""
    kept = [o.key for o in result.network.outputs if not o.training_only]
    if len(kept) <= 1 or result.network.returns == "tuple":
        return ["output"] if len(kept) <= 1 else [f"output{k}" for k in kept]
    return kept


def flat_outputs(y: Any) -> list:
    """The tensors a forward returned: one, a tuple or namedtuple, or a dict's values."""
    if isinstance(y, dict):
        return list(y.values())
    if isinstance(y, (tuple, list)):
        return list(y)
    return [y]


def _index_bound(result: Any) -> int:
    from netspec.ops import REGISTRY

    limits = [
        r.kwargs[bound]
        for top in result.layers
        for _, r in top.walk()
        if r.type in REGISTRY and REGISTRY[r.type].inputs  # a Parameter takes none
        for bound in [REGISTRY[r.type].inputs[0].index_bound]
        if bound is not None and bound in r.kwargs
    ]
    return min(limits) if limits else 2


# ------------------------------------------------------------------ the formats


def _forward(model: Any, xs: tuple) -> Any:
    try:
        return model(*xs)
    except Exception as exc:
        shown = ", ".join(f"{'×'.join(map(str, x.shape))} {str(x.dtype).removeprefix('torch.')}"
                          for x in xs)
        raise ExportError(f"the PyTorch model itself fails on a {shown} input: "
                          f"{_reason(exc)}") from None


def _batch_dim(batch_dynamic: bool, inputs: int = 1, model: Any = None) -> Any:
    """dim 0 of every input is the one batch size (named batch in ONNX)."""
    import torch

    if not batch_dynamic:
        return None
    batch = torch.export.Dim("batch", min=1, max=65536)
    shapes = tuple({0: batch} for _ in range(inputs))
    # forward(self, *inputs) (netspec.emit.modules.NetworkOutputs): one parameter
    parameters = list(inspect.signature(model.forward).parameters.values()) if model else []
    if len(parameters) == 1 and parameters[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return (shapes,)
    return shapes


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines and warnings, captured (shown only on failure)."""
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield out


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _innermost(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None and exc.__cause__ is not exc:
        exc = exc.__cause__
    return exc


def _reason(exc: BaseException) -> str:
    """The informative first lines of an exporter's exception, without its traceback."""
    text = ANSI.sub("", str(exc)).strip() or type(exc).__name__
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    keep: list[str] = []
    for ln in lines:
        if ln.lstrip().startswith(("Traceback", "File \"", "## ", "```", "- ")) and keep:
            break
        keep.append(ln.strip())
        if len(keep) >= 4:
            break
    reason = " ".join(keep)
    return reason if len(reason) <= 600 else reason[:597] + "..."


def _unsupported_op(text: str) -> str | None:
    match = re.search(r"(aten::\w+|aten\.\w+|torch\.ops\.aten\.\w+)", text)
    return match.group(1).replace("torch.ops.", "") if match else None


def _layer_of(model: Any, xs: tuple, batch_dynamic: bool, text: str, op: str | None,
              result: Any) -> str:
    """' at layer NAME (TYPE)' for the node an ONNX exporter error names, or '': the model
    is exported again with torch.export, whose nodes remember the module they came from."""
    match = re.search(r"%(\w+) : ", text)
    if not match:
        return ""
    try:
        program = _program(model, xs, batch_dynamic)
    except ExportError:
        return ""
    nodes = list(program.graph.nodes)
    node = next((n for n in nodes if n.name == match.group(1)), None)
    if node is None and op:  # the exporter decomposed it further: aten.rrelu_with_noise_...
        stem = op.split(".")[-1]
        names = {n: str(getattr(n.target, "__name__", "")).split(".")[0] for n in nodes
                 if n.op == "call_function"}
        found = [n for n, name in names.items() if name and stem.startswith(name)]
        node = max(found, key=lambda n: len(names[n])) if found else None
    stack = list((node.meta.get("nn_module_stack") or {}).values()) if node is not None else []
    if not stack:
        return ""
    path = str(stack[-1][0]).removeprefix("L__self__").lstrip(".")
    path = re.sub(r"getattr\(L__self___?(\w+), '(\w+)'\)", r"\1.\2", path)
    by_name = {r.qualname or r.name: r for top in result.layers for _, r in top.walk()}
    layer = by_name.get(path)
    if layer is None:
        return f" at module {path}"
    return f" at layer {path} ({layer.type})"


def _export_onnx(model: Any, xs: tuple, path: Path, batch_dynamic: bool, report: ExportReport,
                 result: Any, opset: int | None = None):
    try:
        import onnx
        import onnxscript  # noqa: F401  (the dynamo exporter's op library)
    except ImportError as exc:
        raise ExportError(
            f"ONNX export needs the {exc.name} package: pip install onnx onnxscript onnxruntime"
        ) from None
    import torch

    external = _weight_bytes(model) > EXTERNAL_DATA_BYTES
    if external:
        report.notes.append(f"the weights are in {path.name}.data beside it (beyond ONNX's "
                            "2 GB limit for one file)")
        report.files.append(path.with_name(path.name + ".data"))
    try:
        with _quiet() as log:
            program = torch.onnx.export(
                model,
                xs,
                str(path),
                dynamo=True,
                input_names=_input_names(result),
                output_names=_output_names(result),
                # the ONNX dimension is named batch
                dynamic_shapes=_batch_dim(batch_dynamic, len(xs), model),
                opset_version=opset,
                # one self-contained file, unless the weights pass protobuf's 2 GB limit:
                # then they go to FILE.data beside it
                external_data=external,
                verbose=False,
            )
    except Exception as exc:
        inner = _innermost(exc)
        text = ANSI.sub("", f"{exc}\n{log.getvalue()}")
        op = _unsupported_op(str(inner)) or _unsupported_op(text)
        where = _layer_of(model, xs, batch_dynamic, text, op, result)
        if "No ONNX function found" in text or "No decompositions registered" in text:
            raise ExportError(
                f"ONNX export failed{where}: the operator {op or '(unknown)'} has no ONNX "
                f"translation (torch {torch.__version__.split('+')[0]}, onnxscript "
                f"{_version('onnxscript')}); the torchscript and exported-program formats "
                "may still work"
            ) from None
        raise ExportError(f"ONNX export failed{where}: {_reason(inner)}") from None
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise ExportError(f"{path}: onnx.checker refuses the exported model: {_reason(exc)}") \
            from None
    written = program.model.opset_imports.get("", opset) if program is not None else opset
    report.method = f"torch.onnx dynamo exporter, opset {written}; onnx.checker passed"


EXTERNAL_DATA_BYTES = 1_800_000_000


def _weight_bytes(model: Any) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _runner_onnx(path: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError(
            f"{path} was written and passes onnx.checker, but verifying it needs onnxruntime: "
            "pip install onnxruntime (or --no-verify)"
        ) from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot load {path}: {_reason(exc)}") from None
    names = [i.name for i in session.get_inputs()]

    def run(*xs):
        import torch

        outputs = session.run(None, {name: x.numpy() for name, x in zip(names, xs,
                                                                          strict=True)})
        tensors = [torch.from_numpy(o) for o in outputs]
        return tensors[0] if len(tensors) == 1 else tensors

    return run


def _output_only_children(model: Any) -> list[tuple[str, Any]]:
    """The children TorchScript cannot compile (netspec's classes calling super().forward:
    an RNN's output-only wrapper, a cell loop), each saying what it is (script_note)."""
    return [(n, m) for n, m in model.named_modules()
            if n and type(m).__module__ == "netspec.ops.torch_side"
            and getattr(m, "script_note", None)]


def _set_child(model: Any, qualname: str, module: Any) -> None:
    parent_name, _, name = qualname.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, name, module)


def _export_torchscript(model: Any, xs: tuple, path: Path, report: ExportReport) -> None:
    import torch

    scriptable = copy.deepcopy(model)
    traced_children = []
    rnns = _output_only_children(scriptable)
    if rnns:
        # TorchScript cannot compile `super().forward(input)[0]`: trace those children alone
        # (no control flow depends on the data; the batch size stays symbolic) and script
        # everything around them.
        seen: dict[str, Any] = {}
        hooks = [m.register_forward_pre_hook(lambda m, a, n=n: seen.setdefault(n, a))
                 for n, m in rnns]
        with torch.no_grad():
            _forward(scriptable, xs)
        for h in hooks:
            h.remove()
        with _quiet():
            for name, module in rnns:
                if name in seen:
                    _set_child(scriptable, name, torch.jit.trace(module, seen[name]))
                    traced_children.append((name, module.script_note))
    try:
        with _quiet():
            compiled = torch.jit.script(scriptable)
        report.method = "torch.jit.script"
        notes: dict[str, list[str]] = {}
        for name, note in traced_children:
            notes.setdefault(note, []).append(name)
        if notes:
            report.method += " (" + "; ".join(f"{', '.join(names)} traced: {note}"
                                              for note, names in notes.items()) + ")"
    except Exception as exc:
        why = _reason(exc).split(":")[0][:200]
        try:
            with _quiet(), torch.no_grad():
                # a dict or namedtuple of outputs: strict=False lets trace keep it
                compiled = torch.jit.trace(model, xs, strict=False)
        except Exception as exc2:
            raise ExportError(
                f"TorchScript export failed: scripting: {_reason(exc)}; tracing: {_reason(exc2)}"
            ) from None
        report.method = "torch.jit.trace"
        report.notes.append(
            f"torch.jit.script failed ({why}); traced instead: the file replays the operations "
            "seen on the example input"
        )
    with _quiet():  # torch.jit.save's deprecation warning
        torch.jit.save(compiled, str(path))


def _runner_torchscript(path: Path):
    import torch

    try:
        with _quiet():
            loaded = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ExportError(f"torch.jit.load cannot read {path} back: {_reason(exc)}") from None
    loaded.eval()
    return loaded


def _program(model: Any, xs: tuple, batch_dynamic: bool) -> Any:
    import torch

    try:
        with _quiet():
            return torch.export.export(model, xs,
                                       dynamic_shapes=_batch_dim(batch_dynamic, len(xs), model))
    except Exception as exc:
        inner = _innermost(exc)
        op = _unsupported_op(str(inner))
        what = f" (at {op})" if op else ""
        raise ExportError(f"torch.export failed{what}: {_reason(inner)}") from None


def _export_program(model: Any, xs: tuple, path: Path, batch_dynamic: bool,
                    report: ExportReport):
    import torch

    torch.export.save(_program(model, xs, batch_dynamic), str(path))
    report.method = "torch.export.export"


def _runner_program(path: Path):
    import torch

    try:
        with _quiet():
            program = torch.export.load(str(path))
    except Exception as exc:
        raise ExportError(f"torch.export.load cannot read {path} back: {_reason(exc)}") from None
    return program.module()


# ------------------------------------------------------------------ export


def load_exported(path: str | os.PathLike, fmt: str | None = None) -> Any:
    """A callable (the inputs -> the output, or a list of outputs where there are several)
    running an exported file: an onnxruntime session, the loaded TorchScript module, or the
    exported program's module."""
    path = Path(path)
    fmt = format_for(fmt, path)
    return {"onnx": _runner_onnx, "torchscript": _runner_torchscript,
            "exported-program": _runner_program}[fmt](path)


def export(
    spec: Any,
    fmt: str | None,
    path: str | os.PathLike,
    weights: str | os.PathLike | None = None,
    batch_dynamic: bool = True,
    *,
    input_shape: tuple[int, ...] | None = None,
    batch: int = 2,
    verify: bool = True,
    verify_batches: tuple[int, ...] | None = None,
    atol: float = ATOL,
    model: Any = None,
    opset: int | None = None,
    ignore_memory: bool = False,
) -> ExportReport:
    """Export the network of ``spec`` (a Spec, a path or YAML text) to ``path``.

    ``fmt``: "onnx", "torchscript" or "exported-program"; None takes it from the suffix
    (.onnx, .ts/.torchscript, .pt2).  ``weights``: a netspec checkpoint or a state_dict
    file (else the freshly initialised weights).  ``model``: an already built (trained)
    model of this spec, used instead of building one.  ``batch``: the example batch (the
    fixed batch when not ``batch_dynamic``).  Verification reloads the file and compares
    it with PyTorch at ``verify_batches`` (default: ``batch`` and ``batch + 1``, or just
    ``batch`` when the batch is fixed).  ``opset``: the ONNX opset (default: the exporter's).

    Raises SpecError for a bad spec, OSError for an unreadable spec, NotEnoughMemory (before
    allocating) when the model and its largest batch need more memory than is available
    (``ignore_memory=True`` goes ahead), ExportError for the rest; returns the report (check
    ``.ok``: verification beyond ``atol`` does not raise)."""
    fmt = format_for(fmt, path)
    path = Path(path)
    _refuse_unwritable(fmt, path, batch, opset)
    from netspec.pipeline.check import as_spec  # a Spec from a Spec, a path or YAML text

    spec = as_spec(spec)
    result = _check(spec, input_shape)
    if verify_batches is None:
        verify_batches = (batch, batch + 1) if batch_dynamic else (batch,)
    from netspec.emit.memory import guard

    guard(result, batch=max(batch, *verify_batches) if verify else batch,
          ignore=ignore_memory)
    model = _model_to_export(spec, result, model, weights, input_shape)
    report = ExportReport(fmt, path, "", batch_dynamic, atol=atol)
    _write(model, result, fmt, path, batch, batch_dynamic, opset, report)
    if verify:
        _verify(model, result, fmt, path, verify_batches, report)
    return report


def _refuse_unwritable(fmt: str, path: Path, batch: int, opset: int | None) -> None:
    """Usage errors (exit 2), before anything is built."""
    if path.is_dir():
        raise ExportError(f"cannot write {path}: is a directory", 2)
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: no folder {path.parent}", 2)
    if batch < 1:
        raise ExportError(f"the batch size must be at least 1, not {batch}", 2)
    if opset is not None and (fmt != "onnx" or opset < MIN_OPSET):
        why = "is for ONNX only" if fmt != "onnx" else f"must be at least {MIN_OPSET}, not {opset}"
        raise ExportError(f"the opset {why}", 2)


def _model_to_export(spec: Any, result: Any, model: Any, weights: Any,
                     input_shape: tuple[int, ...] | None) -> Any:
    """The given model, or one built from the checked spec with ``weights`` loaded; on the
    CPU in eval mode."""
    if model is None:
        from netspec.emit.build import build

        model = build(result, ignore_memory=True)  # guarded by the caller, with the batch
        if weights is not None:
            own = result if input_shape is None else _check(spec, None)
            load_weights(model, weights, spec, own)
    elif weights is not None:
        raise ExportError("give weights or a model, not both", 2)
    model = model.cpu().eval()
    # a network with training_only outputs: what eval runs, a plain graph module
    inference = getattr(model, "inference_module", None)
    return inference().eval() if inference is not None else model


def _write(model: Any, result: Any, fmt: str, path: Path, batch: int, batch_dynamic: bool,
           opset: int | None, report: ExportReport) -> None:
    """Write the file in ``fmt``; its time and size (extra files included) go in the report."""
    import torch

    xs = example_inputs(result, batch)
    start = time.perf_counter()
    try:
        with torch.no_grad() if fmt == "torchscript" else contextlib.nullcontext():
            if fmt == "onnx":
                _export_onnx(model, xs, path, batch_dynamic, report, result, opset)
            elif fmt == "torchscript":
                _export_torchscript(model, xs, path, report)
            else:
                _export_program(model, xs, path, batch_dynamic, report)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}", 2) from None
    report.seconds = time.perf_counter() - start
    report.bytes = sum(p.stat().st_size for p in (path, *report.files) if p.is_file())


def _verify(model: Any, result: Any, fmt: str, path: Path, verify_batches: tuple[int, ...],
            report: ExportReport) -> None:
    """Reload the file and compare it with PyTorch at each batch size: a wrong shape or a
    failure raises; the largest difference of each goes in the report."""
    import torch

    run = load_exported(path, fmt)
    for i, b in enumerate(verify_batches):
        xs = example_inputs(result, b, seed=1 + i)
        with torch.no_grad():
            expected = flat_outputs(_forward(model, xs))
            try:
                got = flat_outputs(run(*xs))
            except Exception as exc:
                raise ExportError(
                    f"the exported {fmt} file fails at batch {b}: {_reason(exc)}"
                ) from None
        shapes = ([tuple(g.shape) for g in got], [tuple(e.shape) for e in expected])
        if shapes[0] != shapes[1]:
            shown = [", ".join(map(str, s)) for s in shapes]
            raise ExportError(f"the exported {fmt} file gives shape {shown[0]} at batch {b}, "
                              f"PyTorch {shown[1]}")
        report.differences[b] = max(
            ((g.double() - e.double()).abs().max().item() if g.numel() else 0.0)
            for g, e in zip(got, expected, strict=True))
        for e in expected:
            if e.numel():
                report.scale = max(report.scale, e.abs().max().item())


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def describe(report: ExportReport, spec_file: str = "", name: str = "") -> list[str]:
    """The command line's lines for a report."""
    size = report.bytes / 1e6
    batch = "dynamic batch" if report.batch_dynamic else "fixed batch"
    head = f"{spec_file}: {name} -> " if spec_file else ""
    lines = [
        f"{head}{report.path} ({report.format}, {size:,.1f} MB, {batch}) in {report.seconds:.1f} s",
        f"  {report.method}",
    ]
    lines += [f"note: {n}" for n in report.notes]
    if report.differences:
        runtime = {"onnx": "onnxruntime", "torchscript": "torch.jit.load",
                   "exported-program": "torch.export.load"}[report.format]
        diffs = ", ".join(f"batch {b}: {d:.2e}" for b, d in report.differences.items())
        verdict = "ok" if report.ok else f"EXCEEDS {report.atol:g}"
        lines.append(
            f"verify: {runtime} vs PyTorch, max |difference| {diffs} "
            f"(tolerance {report.atol:g}; outputs up to {report.scale:.3g}): {verdict}"
        )
    return lines

"""Stage 4, infer: walk the network, fill in inferable arguments, apply each layer's shape
rule and parameter count.  Pure Python: nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Diagnostic
from .layers import Args, ShapeError, fmt
from .layers._base import REQUIRED
from .loader import Document
from .resolve import LayerEntry, Network

INT_DTYPES = ("int64", "int32")


@dataclass
class LayerResult:
    index: int
    name: str
    type: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None  # None: not known (an error here or before)
    params: int | None
    kwargs: dict[str, Any] = field(default_factory=dict)  # what the torch constructor gets

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "params": self.params,
        }


def _rank_error(entry: LayerEntry, x: tuple[int, ...]) -> str | None:
    lt = entry.type
    if lt.ranks is not None:
        if len(x) in lt.ranks:
            return None
        layouts = " or ".join(lt.ranks[r] for r in sorted(lt.ranks, reverse=True))
        return f"expects a {layouts} sample (batch excluded), got {fmt(x)}"
    if len(x) < lt.min_rank:
        return (
            f"expects a sample with at least {lt.min_rank} dimension"
            f"{'s' if lt.min_rank > 1 else ''} (batch excluded), got {fmt(x)}"
        )
    return None


class _Walker:
    def __init__(self, doc: Document, network: Network):
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []
        self.results: list[LayerResult] = []
        self.network = network
        self.dtype_from_input = True  # only dtype-agnostic layers (Flatten, ...) so far
        self.at_input = True  # no layer has run yet

    def report(
        self, entry: LayerEntry, message: str, arg: str | None = None, severity: str = "error"
    ) -> None:
        self.diagnostics.append(
            self.doc.diagnostic(
                entry.arg_path(arg),
                f"{entry.label}: {message}",
                severity=severity,
                layer=entry.info,
            )
        )

    def run(self) -> None:
        x: tuple[int, ...] | None = self.network.input_shape
        dtype = self.network.input_dtype
        origin = f"the network input, {fmt(x)}"
        failed_at: LayerEntry | None = None
        skipped: list[LayerEntry] = []
        for entry in self.network.layers:
            if x is None or entry.broken:
                # a broken entry has its own error; only the others are "not shape-checked"
                if entry.broken and not skipped:
                    failed_at = entry
                elif not entry.broken:
                    skipped.append(entry)
                self.results.append(
                    LayerResult(entry.index, entry.name, entry.type_name, x, None, None)
                )
                x = None
                continue
            out, kwargs, params, dtype = self.layer(entry, x, dtype, origin)
            self.at_input = False
            if entry.type.input_dtype != "any" or entry.type.output_dtype:
                self.dtype_from_input = False
            self.results.append(
                LayerResult(entry.index, entry.name, entry.type_name, x, out, params, kwargs)
            )
            if out is None:
                failed_at = entry
            elif entry.type.name == "Flatten" and out != x:
                origin = f"{fmt(x)} flattened at layer {entry.index}"
            else:
                origin = f"output of {entry.label}, {fmt(out)}"
            x = out
        if skipped and failed_at is not None:
            first, last = skipped[0], skipped[-1]
            span = f"layer {first.index}" if first is last else f"layers {first.index}–{last.index}"
            self.diagnostics.append(
                self.doc.diagnostic(
                    first.path,
                    f"{span} not shape-checked: the shape coming out of layer "
                    f"{failed_at.index} is unknown after its error",
                    severity="note",
                )
            )

    def layer(self, entry: LayerEntry, x: tuple[int, ...], dtype: str, origin: str):
        lt = entry.type
        if lt.input_dtype == "int" and dtype not in INT_DTYPES:
            if self.dtype_from_input:
                shape = ", ".join(map(str, self.network.input_shape))
                self.report(
                    entry,
                    f"takes integer indices (token ids), but the network input "
                    f"is {dtype}; declare input: {{shape: [{shape}], dtype: int64}}",
                )
            else:
                self.report(
                    entry,
                    f"takes integer indices (token ids), but gets {dtype} "
                    f"({origin}); put the {lt.name} first, on the token ids",
                )
        elif lt.input_dtype == "float" and dtype in INT_DTYPES:
            self.report(
                entry,
                f"needs a floating-point input, but gets {dtype} (integer token "
                "ids go through an Embedding first)",
            )
        out_dtype = lt.output_dtype or (
            dtype if lt.input_dtype == "any" or dtype not in INT_DTYPES else "float32"
        )
        problem = _rank_error(entry, x)
        if problem:
            layouts = list((lt.ranks or {}).values())
            if self.at_input and any(
                lay.startswith("C×") and lay.count("×") == len(x) for lay in layouts
            ):
                shape = ", ".join(map(str, (1, *x)))
                problem += f"; for one channel, write input: [{shape}]"
            self.report(entry, problem)
            return None, {}, None, out_dtype
        values = {a.name: a.default for a in lt.args if a.default is not REQUIRED}
        values.update(entry.given)
        kwargs = dict(entry.given)
        a = Args(values, set(entry.given))
        for arg in lt.args:
            if arg.infer is None:
                continue
            actual = arg.infer(x)
            if arg.name not in entry.given:
                values[arg.name] = kwargs[arg.name] = actual
                continue
            written = entry.given[arg.name]
            if arg.noun and written != actual:
                if arg.lenient_if is not None and arg.lenient_if(a):
                    self.report(
                        entry,
                        f"{arg.name} {written} does not match the {actual} "
                        f"{arg.noun} coming in ({origin}); PyTorch ignores it "
                        "here (nothing in the layer uses it)",
                        arg.name,
                        severity="warning",
                    )
                    continue
                self.report(
                    entry,
                    f"{arg.name} {written} does not match the {actual} "
                    f"{arg.noun} coming in ({origin})",
                    arg.name,
                )
                values[arg.name] = kwargs[arg.name] = actual  # go on with what flows in
        try:
            out = tuple(lt.rule(a, x))
            params = lt.params(a, x)
        except ShapeError as exc:
            self.report(entry, exc.message, exc.arg)
            out, params = None, None
        # running statistics are float32 state too, like parameters
        has_state = params or a.values.get("track_running_stats")
        if (
            has_state
            and dtype not in INT_DTYPES
            and dtype != "float32"
            and dtype not in lt.mixed_dtypes
        ):
            # netspec builds float32 parameters; PyTorch refuses to mix them with other floats
            self.report(
                entry,
                f"has float32 parameters but gets {dtype} input; netspec builds "
                f"float32 models (use float32 input, or convert the built model "
                f"with .to(torch.{dtype}) yourself)",
            )
        for message, arg in a.warnings:
            self.report(entry, message, arg, severity="warning")
        return out, kwargs, params, out_dtype


def infer(doc: Document, network: Network) -> tuple[list[LayerResult], list[Diagnostic]]:
    walker = _Walker(doc, network)
    walker.run()
    return walker.results, walker.diagnostics

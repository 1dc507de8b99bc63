"""`netspec import`'s last step: the imported spec is checked like any other, and every
argument netspec infers is compared with the module's own value."""

from __future__ import annotations

from typing import Any

from netspec.importer.fx import (
    DEFAULT_INPUT,
    Imported,
    ImportProblem,
    MetaValuesNeeded,
    collapse_arg,
    dumps,
    kwargs_text,
    make_model,
    model_to_spec,
    plain_value,
    same_value,
)
from netspec.ops import REGISTRY
from netspec.pipeline.check import check, load


def verify(imported: Imported, text: str | None = None):
    """Check the spec and compare every inferred argument with the module's own value."""
    spec = load(text if text is not None else dumps(imported.data))
    result = check(spec)
    shape = "×".join(map(str, imported.data["input"]))
    if not result.ok:
        first = result.errors[0].message
        raise ImportProblem(f"the imported spec does not check at input {shape}: {first}"
                            + (f" (and {len(result.errors) - 1} more)"
                               if len(result.errors) > 1 else "")
                            + "; if its layers do not fit this input, give the model's input "
                            "shape with --input C,H,W")
    for top in result.layers:
        for _, r in top.walk():
            expect = imported.expected.get(r.qualname)
            if not expect or r.kind != "layer":
                continue
            for arg, value in expect.items():
                got = collapse_arg(REGISTRY[r.type].arg_by_name[arg],
                                   plain_value(r.kwargs.get(arg)))
                if not same_value(got, value) and not _one_element(got, value):
                    raise ImportProblem(f"module '{r.qualname}' ({r.type}) has {arg} {value}, "
                                        f"but at input {shape} it gets {got}; give the model's "
                                        "input shape with --input")
    return result


def _one_element(got: Any, value: Any) -> bool:
    """An inferred size n and the module's (n,) (a LayerNorm's normalized_shape): the same."""
    return isinstance(value, list) and len(value) == 1 and same_value(got, value[0])


def import_target(target: str, kwargs: dict[str, Any] | None = None,
                  input_shape=DEFAULT_INPUT, name: str | None = None):
    """`netspec import`: (spec text, Imported, CheckResult) for a target's model, checked.
    Raises TargetError (cannot make the model) or ImportProblem (cannot express it)."""
    model = make_model(target, kwargs)
    try:
        imported = model_to_spec(model, input_shape, name)
    except MetaValuesNeeded:  # a buffer's values are read: made again, with its tensors
        model = make_model(target, kwargs, meta=False)
        imported = model_to_spec(model, input_shape, name)
    cls = type(model)
    call = f"{target}({kwargs_text(kwargs or {})})"
    header = (f"Imported by `netspec import` from {call}, a {cls.__module__}.{cls.__qualname__},\n"
              "by tracing each module's forward with torch.fx.  Module paths, and so the\n"
              "state_dict keys, are the original's: load its weights with strict=True.")
    text = dumps(imported.data, header)
    result = verify(imported, text)
    return text, imported, result

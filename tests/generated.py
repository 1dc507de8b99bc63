"""Generated code as a test runs it: the file `netspec codegen` writes, imported as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_generated(source: str, name: str, directory: Path) -> ModuleType:
    """Write ``source`` to ``directory/<name>.py`` and import it as module ``name``."""
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The line a generated file gives where its state_dict keys are not netspec.build's (style
# sequential gives the spec's names up; the others name the entries the spec leaves unnamed)
BY_POSITION = "model.load_state_dict(dict(zip(model.state_dict(), weights.values())))"


def build_weights_for(model, source: str, weights: dict) -> dict:
    """netspec.build's ``weights`` (a state_dict) as the generated ``model`` takes them: by
    key where its keys are build's, else by position, which the file's ``source`` must say."""
    keys = list(model.state_dict())
    if keys == list(weights):
        return weights
    assert BY_POSITION in source, "keys differ from build's and the file does not say so"
    assert [tuple(v.shape) for v in model.state_dict().values()] == \
        [tuple(v.shape) for v in weights.values()]
    return dict(zip(keys, weights.values(), strict=True))

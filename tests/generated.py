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

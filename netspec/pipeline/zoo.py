"""The zoo: the example specs shipped inside the package (``netspec/zoo/*.yaml``).

In a clone, ``netspec/zoo`` is a link to ``specs/zoo`` (one copy of every file; the
tests, the README and the Makefile use the ``specs/zoo`` paths); a built wheel holds the
files themselves (package data, pyproject.toml), so ``pip install .`` ships them.
``netspec zoo`` lists them and copies one out as the start of a user's own spec."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netspec.core.diagnostics import did_you_mean

ZOO_DIR = Path(__file__).resolve().parents[1] / "zoo"
# the short title of a spec: its first comment up to a parenthesis, a comma, colon or stop
_TITLE_END = re.compile(r" \(|[,:]|\.(\s|$)")


class ZooError(Exception):
    """No such zoo spec, or a copy that would overwrite a file."""


@dataclass(frozen=True)
class ZooEntry:
    name: str  # the file's stem: resnet18
    path: Path
    network: str | None  # the spec's class name: ResNet18
    input_shape: list[int] | None
    output_shape: list[int] | None
    params: int | None
    about: str  # the spec's leading comment, one paragraph

    @property
    def title(self) -> str:
        return _TITLE_END.split(self.about, maxsplit=1)[0].strip()

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": str(self.path),
            "network": self.network,
            "input_shape": self.input_shape,
            "output_shape": self.output_shape,
            "total_params": self.params,
            "title": self.title,
            "about": self.about,
        }


def names() -> list[str]:
    return sorted(p.stem for p in ZOO_DIR.glob("*.yaml"))


def spec_path(name: str) -> Path:
    """The file of a zoo spec by name (``resnet18`` or ``resnet18.yaml``)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    known = names()
    if stem not in known:
        raise ZooError(
            f"no zoo spec '{name}'{did_you_mean(stem, known)}; `netspec zoo` lists the "
            f"{len(known)} there are"
        )
    return ZOO_DIR / f"{stem}.yaml"


def leading_comment(text: str) -> str:
    """The comment lines before the first key, as one paragraph."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(part for part in lines if part)


def entry(name: str) -> ZooEntry:
    """A zoo spec, checked (milliseconds, no torch): its network, shapes and parameters."""
    from netspec.pipeline.check import check

    path = spec_path(name)
    result = check(path)
    net = result.network
    ok = result.ok and net is not None
    return ZooEntry(
        name=path.stem,
        path=path,
        network=net.name if net is not None else None,
        input_shape=list(net.input_shape) if ok else None,
        output_shape=list(result.output_shape) if ok and result.output_shape else None,
        params=result.total_params if ok else None,
        about=leading_comment(path.read_text(encoding="utf-8")),
    )


def entries() -> list[ZooEntry]:
    return [entry(name) for name in names()]


def copy(name: str, dest: str | Path, overwrite: bool = False) -> Path:
    """Write zoo spec ``name`` to ``dest`` (comments and all); refuses to overwrite a file
    unless ``overwrite``."""
    source = spec_path(name)
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / source.name
    if dest.exists() and not overwrite:
        raise ZooError(f"{dest} exists; pass --force to overwrite it")
    dest.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    return dest

"""The README's example of the tensor functions checks, and each line's comment is what
netspec computes and writes: the generated call and the output shape per sample."""

from __future__ import annotations

import re
from pathlib import Path

import netspec
from netspec.emit.codegen import generate

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_is_what_netspec_writes():
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
                 if "Reshape: {shape: [0, 0, 4, -1]}" in b)
    result = netspec.check("netspec: 1\n" + block)
    assert result.ok, [d.format() for d in result.errors]
    forward = generate(result, "class").split("def forward")[1]
    entries = [line for line in block.splitlines() if line.startswith("  - ")]
    assert len(entries) == len(result.layers)
    for line, layer in zip(entries, result.layers, strict=True):
        call, shape = line.split("# ")[1].rsplit(None, 1)
        assert f"x = {call.strip()}  # -> {shape}" in forward, (line, forward)
        assert "×".join(map(str, layer.output_shape)) == shape

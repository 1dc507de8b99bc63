"""Split and Chunk (netspec/ops/index.py): ops that give several tensors, taken by later
entries as from: name.0; their rules against torch, and every command on them."""

from __future__ import annotations

import warnings

import pytest
import torch
import yaml
from conftest import examples
from function_ops import DTYPES, build_and_codegen_agree, dims_strategy, summary_and_render
from hypothesis import given, settings
from hypothesis import strategies as st

import netspec

SPEC = """\
netspec: 1
name: Halves
input: [8, 6]
layers:
  - Conv1d: {out_channels: 8, kernel_size: 1}
    name: conv
  - Chunk: {chunks: 2, dim: 1}
    name: halves
  - Mul:
    from: [halves.0, halves.1]
    name: gated
  - Split: {split_size_or_sections: [2, 4], dim: 2}
    name: cut
  - Concat: {dim: 2}
    from: [cut.1, cut.0]
"""

samples = st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple)


def netspec_parts(op: str, args: dict, sample: tuple, dtype: str):
    """(the shape of every part, their dtype) when netspec accepts, else (None, why)."""
    data = {"netspec": 1, "input": {"shape": list(sample), "dtype": dtype},
            "layers": [{op: args, "name": "parts"}]}
    result = netspec.check(yaml.safe_dump(data, sort_keys=False))
    if not result.ok:
        return None, "; ".join(d.message for d in result.errors)
    node = result.layers[0]
    return [shape for _, shape in node.outputs], node.output_dtype


def torch_parts(fn, sample: tuple, dtype: str):
    """fn on zeros at two batch sizes: the sample shape of every part and their dtype, when
    both runs keep the batch first and agree; else (None, why)."""
    seen = []
    for n in (2, 3):
        x = torch.zeros((n, *sample), dtype=getattr(torch, dtype))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parts = fn(x)
        except (RuntimeError, IndexError, ValueError, TypeError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if any(p.shape[0] != n for p in parts):
            return None, "the batch is split"
        if any(p.numel() == 0 for p in parts):
            return None, "empty part"
        seen.append(([tuple(p.shape[1:]) for p in parts], str(parts[0].dtype)[6:]))
    return seen[0] if seen[0] == seen[1] else (None, f"depends on the batch: {seen}")


@settings(max_examples=examples(150))
@given(sample=samples, data=st.data(), dtype=st.sampled_from(DTYPES))
def test_chunk_agrees_with_torch(sample, data, dtype):
    dim = data.draw(dims_strategy(len(sample) + 1, st))
    chunks = data.draw(st.integers(0, 8))
    ours = netspec_parts("Chunk", {"chunks": chunks, "dim": dim}, sample, dtype)
    theirs = torch_parts(lambda x: torch.chunk(x, chunks, dim), sample, dtype)
    if ours[0] is None and theirs[0] is not None and dim % (len(sample) + 1) == 0:
        # DELIBERATE: the batch is never cut (torch keeps it whole only when one part
        # takes all of it, which depends on the batch size)
        assert "is the batch dimension" in ours[1], ours[1]
        return
    assert (ours[0] is None) == (theirs[0] is None), (sample, chunks, dim, ours, theirs)
    if ours[0] is not None:
        assert ours == theirs


@settings(max_examples=examples(150))
@given(sample=samples, data=st.data(), dtype=st.sampled_from(DTYPES))
def test_split_agrees_with_torch(sample, data, dtype):
    dim = data.draw(dims_strategy(len(sample) + 1, st))
    sections = data.draw(st.integers(0, 7) | st.lists(st.integers(0, 4), min_size=1,
                                                      max_size=4))
    ours = netspec_parts("Split", {"split_size_or_sections": sections, "dim": dim}, sample,
                         dtype)
    theirs = torch_parts(lambda x: torch.split(x, sections, dim), sample, dtype)
    if ours[0] is None and theirs[0] is None:
        return
    if ours[0] is None and (dim % (len(sample) + 1) == 0 or sections == 0
                            or (isinstance(sections, list) and 0 in sections)):
        # DELIBERATE: the batch is not cut, and a size 0 (an empty part) is refused by the
        # schema (sizes are at least 1)
        assert "batch dimension" in ours[1] or "at least 1" in ours[1], ours[1]
        return
    if ours[0] is None and sections == 0:  # both refuse: torch for a nonempty dim
        assert theirs[0] is None
        return
    assert ours == theirs, (sample, sections, dim, ours, theirs)


def test_build_codegen_summary_render(tmp_path):
    def reference(m, x):
        halves = torch.chunk(m.conv(x), 2, 1)
        first, second = torch.split(halves[0] * halves[1], [2, 4], 2)
        return torch.cat([second, first], 2)

    source = build_and_codegen_agree(SPEC, reference, [torch.randn(2, 8, 6)], tmp_path,
                                     "Halves")
    assert "halves = torch.chunk(x, 2, 1)  # -> 4×6, 4×6" in source
    assert "gated = halves[0] * halves[1]" in source or "out = halves[0] * halves[1]" in source
    assert "cut = torch.split(" in source and "[cut[1], cut[0]]" in source
    rows, dot = summary_and_render(SPEC)
    assert rows["halves"].params == rows["cut"].params == 0
    assert "2 along dim 1" in dot and "[2, 4] along dim 2" in dot


def test_check_table_and_json_show_every_part():
    result = netspec.check(SPEC)
    assert result.ok
    rows = {line.split()[1]: line.split(None, 3)[3] for line in result.table().splitlines()[3:-1]}
    assert rows["halves"].split("  ")[0].strip() == "4×6, 4×6"
    assert rows["cut"].split("  ")[0].strip() == "4×2, 4×4"
    halves = result.as_json()["layers"][1]
    assert halves["outputs"] == {"0": [4, 6], "1": [4, 6]}
    many = netspec.check(SPEC.replace("{chunks: 2, dim: 1}", "{chunks: 8, dim: 1}").replace(
        "from: [halves.0, halves.1]", "from: [halves.0, halves.7]"))
    assert "8 × 1×6" in many.table()


@pytest.mark.parametrize(("old", "new", "message", "at"), [
    ("from: [halves.0, halves.1]", "from: [halves.0, halves.2]",
     "from: 'halves' has no output '2'; it gives 2: halves.0, halves.1", "halves.2"),
    ("from: [halves.0, halves.1]", "from: [halves, halves.1]",
     "'halves' gives 2 tensors (4×6, 4×6); take one by name: from: halves.0 or halves.1",
     "halves,"),
    ("from: [halves.0, halves.1]", "from: [conv.0, halves.1]",
     "from: 'conv' gives one tensor, not several: write from: conv", "conv.0"),
    ("from: [halves.0, halves.1]", "from: [halvs.0, halves.1]",
     "from: no earlier entry here is named 'halvs' (did you mean 'halves'?)", "halvs.0"),
    ("[2, 4], dim: 2", "[2, 3], dim: 2",
     "split_size_or_sections [2, 3] adds up to 5, but dim 2 has size 6 (input N×4×6)",
     "split_size_or_sections: [2, 3]"),
    ("{chunks: 2, dim: 1}", "{chunks: 2, dim: 0}", "dim 0 is the batch dimension", "dim: 0"),
])
def test_mistakes_point_at_what_is_wrong(old, new, message, at):
    text = SPEC.replace(old, new)
    errors = netspec.check(text).errors
    assert len(errors) == 1, [d.format() for d in errors]
    (error,) = errors
    assert message in error.message, error.format()
    line = text.splitlines()[error.line - 1]
    assert line.index(at.split(":")[0].split(",")[0]) == error.col - 1 \
        or line.index(at) + len(at.split(": ")[0]) + 2 == error.col - 1 + 0, error.format()


def test_taking_all_parts_without_a_name_is_refused():
    text = SPEC.replace("  - Mul:\n    from: [halves.0, halves.1]\n", "  - ReLU:\n")
    (error,) = netspec.check(text).errors
    assert "'halves' gives 2 tensors (4×6, 4×6); take one by name: from: halves.0 or " \
           "halves.1" in error.message
    assert "layer 2" in error.message


def test_a_part_of_an_entry_left_out_by_if_is_its_input():
    """A Chunk left out by if: passes its input on, and so does naming one of its parts (as
    naming the entry does): a block that splits only when asked checks either way."""
    text = """\
netspec: 1
input: [8, 6]
blocks:
  Gate:
    params: {split: true}
    layers:
      - Chunk: {chunks: 2, dim: 1}
        if: split
        name: halves
      - Mul:
        if: split
        from: [halves.0, halves.1]
      - Sigmoid:
        from: halves.1
layers:
  - Gate: {split: false}
  - Gate: {split: true}
"""
    result = netspec.check(text)
    assert result.ok, [d.format() for d in result.errors]
    assert [top.output_shape for top in result.layers] == [(8, 6), (4, 6)]
    model = netspec.build(result)
    x = torch.randn(2, 8, 6)
    with torch.no_grad():
        assert torch.equal(model(x), torch.sigmoid(torch.chunk(torch.sigmoid(x), 2, 1)[1]))

"""The seeded mutation fuzzer (tests/fuzz_specs.py): every spec under specs/ mutated
structurally, and what every command must do with each mutant.

``make test`` runs NETSPEC_FUZZ_MUTANTS mutants (default 2,000) through the Python API,
spread over SLICES tests so that xdist shares them out, plus a sample through build and
the generated code, and a few hundred through the command line; ``make fuzz`` runs 100,000.
A failure prints the seed (NETSPEC_FUZZ_SEED) and, for each kind of failure, its shortest
mutant; ``python -m tests.fuzz_specs INDEX`` reruns one."""

from __future__ import annotations

import fuzz_specs as fz
import pytest

SLICES = 12  # API slices; each runs every SLICES-th mutant
CLI_SLICES = 2
CLI_MUTANTS = max(240, fz.MUTANTS // 20)
BUILD_SLICES = 2
BUILDS = max(24, fz.MUTANTS // 80)  # cheap check-ok mutants built and run in torch
SUBPROCESS_MUTANTS = 5


@pytest.mark.parametrize("part", range(SLICES))
def test_api_invariants(part):
    count, failures = fz.run(range(part, fz.MUTANTS, SLICES), fz.api_invariants)
    assert count, "no mutants: NETSPEC_FUZZ_MUTANTS is below the number of slices"
    assert not failures, fz.report(failures, count, f"API, slice {part} of {SLICES}")


@pytest.mark.parametrize("part", range(BUILD_SLICES))
def test_build_equals_generated_code(part, tmp_path):
    """Cheap mutants that check: build agrees with check, and every generated module has
    build's state_dict keys and shapes and gives its outputs with its weights."""
    failures, built, index = [], 0, 1 + 2 * part  # gentle mutants (odd indices) check more often
    while built < BUILDS // BUILD_SLICES and index < 40 * fz.MUTANTS:
        m = fz.mutant(index)
        index += 2 * BUILD_SLICES
        result = fz.cheap(m)
        if result is None:
            continue
        built += 1
        failures += fz.build_invariants(m, result, tmp_path)
    assert built, "no cheap mutant checked"
    assert not failures, fz.report(failures, built, f"build vs codegen, part {part}")


@pytest.mark.parametrize("part", range(CLI_SLICES))
def test_cli_in_process(part, tmp_path):
    # another stretch of mutants than the API slices run first
    indices = range(fz.MUTANTS + part, fz.MUTANTS + CLI_MUTANTS, CLI_SLICES)
    count, failures = fz.run(indices, lambda m: fz.cli_invariants(m, tmp_path))
    assert not failures, fz.report(failures, count, f"netspec.cli.main, part {part}")


def test_cli_subprocess(tmp_path):
    indices = range(fz.MUTANTS + CLI_MUTANTS, fz.MUTANTS + CLI_MUTANTS + SUBPROCESS_MUTANTS)
    count, failures = fz.run(indices, lambda m: fz.cli_subprocess_invariants(m, tmp_path))
    assert not failures, fz.report(failures, count, "python -m netspec")


# ------------------------------------------------------------------ the fuzzer itself


def test_mutants_are_a_function_of_seed_and_index():
    assert [fz.mutant(i).text for i in range(40)] == [fz.mutant(i).text for i in range(40)]
    other = [fz.mutant(i, seed=fz.SEED + 1).text for i in range(40)]
    assert other != [fz.mutant(i).text for i in range(40)]


def test_every_spec_and_every_mutation_is_used():
    mutants = [fz.mutant(i) for i in range(2 * len(fz.SOURCES) + 400)]
    assert {m.source for m in mutants} == {s.path for s in fz.SOURCES}
    assert {s.path.split("/")[1] for s in fz.SOURCES if "/" in s.path[6:]} >= {
        "zoo", "broken", "language"}
    used = {op.split(":")[0] for m in mutants for op in m.ops}
    assert set(fz.OPS) <= used, set(fz.OPS) - used
    texts = " ".join(m.text for m in mutants)
    for what in ("&id", "*id", "base: torchvision:", "repeat:", "first:", "if:", "from:",
                 "branches:", "inputs:", "outputs:", "from: '", "*4*4"):
        assert what in texts, what


def test_the_language_seeds_check_and_build_as_their_generated_code(tmp_path):
    """specs/language/ holds the seeds for branches:, inputs:/outputs:, numbered from: and
    arithmetic: each checks clean, and build and every generated module agree on it."""
    import netspec

    seeds = [s for s in fz.SOURCES if s.path.startswith("specs/language/")]
    assert len(seeds) >= 2
    for seed in seeds:
        result = netspec.check(seed.text)
        assert result.ok and not result.diagnostics, [d.format() for d in result.diagnostics]
        unchanged = fz.Mutant(-1, seed.path, [], seed.text)
        assert fz.build_invariants(unchanged, result, tmp_path) == []


def test_many_mutants_check_ok():
    """The gentle half keeps specs checking, so summary, codegen and build see them."""
    import netspec

    ok = sum(netspec.check(fz.mutant(i).text).ok for i in range(1, 201, 2))
    assert ok >= 40, ok


def test_a_planted_bug_is_found_and_reported(monkeypatch):
    """The fuzzer can fail: a summary that breaks on a 3-d input is caught, reported by kind
    with the seed and a mutant that reproduces it."""
    from netspec.emit import summary

    real = summary.summarize

    def broken(result, *args, **kwargs):
        if len(result.network.input_shape) == 3:
            raise KeyError("planted")
        return real(result, *args, **kwargs)

    monkeypatch.setattr(summary, "summarize", broken)
    count, failures = fz.run(range(1, 60, 2), fz.api_invariants)
    assert failures
    text = fz.report(failures, count, "planted")
    assert "summary raised KeyError" in text and f"NETSPEC_FUZZ_SEED={fz.SEED}" in text
    assert "mutant #" in text and "netspec: 1" in text


def test_a_hang_is_a_failure(monkeypatch):
    import time

    import netspec

    monkeypatch.setattr(fz, "TIMEOUT", 0.2)
    monkeypatch.setattr(netspec, "check", lambda *a, **k: time.sleep(2))
    failures = fz.api_invariants(fz.mutant(1))
    assert [f.kind for f in failures] == ["hang: took longer than 0.2 s"]


def test_control_characters_in_diagnostics_are_caught():
    from types import SimpleNamespace

    def diagnostic(message):
        return SimpleNamespace(message=message, line=1, col=1,
                               format=lambda: f"<spec>:1:1: error: {message}")

    rec = fz.Recorder(fz.mutant(0))
    rec.diagnostics("check", [diagnostic("name 'a\x1b[2Jb' is bad")])
    rec.diagnostics("check", [diagnostic("two\nlines")])
    rec.diagnostics("check", [diagnostic("fine: 'caf\u00e9'")])
    assert len(rec.failures) == 2


def test_a_text_that_can_only_be_a_file_name_is_a_missing_file_not_a_failure():
    """netspec.load documents FileNotFoundError for one line without a colon: a spec
    truncated to 'netsp' (seed 10, mutant #9270 of 20,000) names a missing file."""
    assert fz.api_invariants(fz.Mutant(-1, "specs/x.yaml", ["text truncate"], "netsp")) == []
    failures = fz.api_invariants(fz.Mutant(-1, "specs/x.yaml", [], "netspec: [1"))
    assert failures == []  # unreadable YAML is a positioned error, no exception either

"""The command line's layout: one table of commands, a parser built per command.

`netspec CMD ...` builds CMD's parser alone; help, no command and an unknown command build
every one.  Both paths must print the same usage, help and errors."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from netspec import cli

# the commands `netspec --help` lists, in its order, with their lines
HELP_LINES = {
    "check": "validate specs and infer every shape (no torch)",
    "build": "build the torch module and run a dry forward pass",
    "render": "draw the network as a diagram (SVG, PNG, PDF or DOT; no torch)",
    "report": "one self-contained HTML page: diagram, summary table, check result",
    "import": "turn an existing nn.Module into a spec (torch.fx)",
    "export": "export to ONNX, TorchScript or a torch.export program, verified",
    "summary": "a table of parameters, buffers, MACs and memory per layer (no torch)",
    "codegen": "write the network as a plain PyTorch module file (no torch needed)",
    "layers": "list the layer types and their arguments",
    "schema": "print the JSON Schema of a spec",
    "zoo": "list the example specs shipped with netspec, or copy one to start from",
    "train": "train a spec: evaluate, checkpoint and log every epoch",
    "eval": "loss and top-1/top-5 accuracy of trained weights",
    "predict": "top-k classes of image files",
    "plot": "draw a run's loss and accuracy curves",
    "weights": "a checkpoint's weights as a plain state_dict file (torch.load)",
}

# the arguments each command requires, so that a bad flag reaches the leftovers check
REQUIRED = {"import": ["torchvision:resnet18"], "plot": ["runs/x"], "layers": [], "schema": [],
            "zoo": [], "weights": ["best.pt"],
            "render": ["spec.yaml", "-o", "x.svg"], "report": ["spec.yaml", "-o", "x.html"],
            "export": ["spec.yaml", "-o", "x.onnx"], "eval": ["spec.yaml", "--weights", "w.pt"],
            "predict": ["spec.yaml", "a.png", "--weights", "w.pt"]}


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps help to the terminal's width


def run(argv: list[str], call=cli.main) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = call(argv)
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def parse_with_full_parser(argv: list[str]) -> int:
    cli._top_parser(with_commands=True).parse_args(argv)
    return 0


def full_subparser(name: str):
    """CMD's parser as the full `netspec` parser holds it."""
    parser = cli._top_parser(with_commands=True)
    (subparsers,) = [a for a in parser._actions if a.dest == "command"]
    return subparsers.choices[name]


def test_top_level_help_lists_every_command_in_order():
    status, out, _ = run(["-h"])
    assert status == 0
    listed = re.findall(r"^    (\S+) +(.+)$", out, re.MULTILINE)
    assert listed == list(HELP_LINES.items())
    assert list(cli.COMMANDS) == list(HELP_LINES)


def test_no_command_prints_the_help_and_exits_2():
    status, out, _ = run([])
    assert status == 2 and out == run(["-h"])[1]


def test_unknown_command_names_every_command():
    status, _, err = run(["frobnicate"])
    choices = ", ".join(f"'{name}'" for name in HELP_LINES)
    assert status == 2
    assert err.endswith(f"invalid choice: 'frobnicate' (choose from {choices})\n")


@pytest.mark.parametrize("name", list(HELP_LINES))
def test_every_command_help_exits_0_and_equals_the_full_parsers(name):
    status, out, err = run([name, "-h"])
    assert status == 0 and err == ""
    assert out.startswith(f"usage: netspec {name} ")
    assert out == full_subparser(name).format_help()


@pytest.mark.parametrize("name", list(HELP_LINES))
def test_a_bad_flag_is_reported_as_the_full_parser_reports_it(name):
    argv = [name, *REQUIRED.get(name, ["spec.yaml"]), "--no-such-flag"]
    status, out, err = run(argv)
    assert (status, out) == (2, "")
    assert err == ("usage: netspec [-h] [--version] COMMAND ...\n"
                   "netspec: error: unrecognized arguments: --no-such-flag\n")
    assert run(argv, parse_with_full_parser) == (status, out, err)


@pytest.mark.parametrize("name", list(HELP_LINES))
def test_missing_arguments_are_reported_as_the_full_parser_reports_them(name):
    argv = [name, "--no-such-flag"]
    status, out, err = run(argv)
    assert status == 2 and "error: " in err
    assert run(argv, parse_with_full_parser) == (status, out, err)


def test_a_missing_argument_is_reported_by_the_command():
    status, _, err = run(["check"])
    assert status == 2
    assert err == full_subparser("check").format_usage() + (
        "netspec check: error: the following arguments are required: FILE\n")


def test_an_option_before_the_command_still_reaches_its_parser():
    # `netspec --bogus check` goes through the full parser, into check's subparser
    status, _, err = run(["--bogus", "check"])
    assert status == 2 and "netspec check: error: the following arguments are required" in err


def test_every_command_module_declares_its_commands():
    for name, (module, _) in cli.COMMANDS.items():
        command = cli._command(name)
        assert command.run.__module__ == f"netspec.cli.{module}", name

"""A spec's base: calls only torchvision's model builders, or modules the person running
netspec trusts (NETSPEC_TRUSTED_MODULES): a spec from someone else runs no other code.
Whoever names a target (base: or netspec import), only model factories are called: never a
loader, never a function declared to return something else; a non-module result and a
target's SystemExit are errors."""

from __future__ import annotations

import sys
import textwrap

import pytest

import netspec
from netspec.cli import main

MODEL_MODULE = """
from torch import nn

CALLS = []


def small_net(width=4):
    CALLS.append(width)
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(width * 36, 2))
"""


@pytest.fixture
def own_models(tmp_path, monkeypatch):
    (tmp_path / "team_models.py").write_text(textwrap.dedent(MODEL_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NETSPEC_TRUSTED_MODULES", raising=False)
    import team_models

    team_models.CALLS.clear()
    yield team_models
    sys.modules.pop("team_models", None)


def spec(base: str, kwargs: str = "") -> str:
    return (f"netspec: 1\nbase: {base}\n" + (f"base_kwargs: {kwargs}\n" if kwargs else "")
            + "input: [3, 8, 8]\n")


def test_an_untrusted_module_is_never_called(own_models):
    result = netspec.check(spec("team_models:small_net", "{width: 8}"))
    assert not result.ok and own_models.CALLS == []
    [error] = result.errors
    assert (error.line, error.col) == (2, 7)
    assert "NETSPEC_TRUSTED_MODULES=team_models" in error.message


def test_a_trusted_module_is_called(own_models, monkeypatch):
    monkeypatch.setenv("NETSPEC_TRUSTED_MODULES", "other, team_models")
    result = netspec.check(spec("team_models:small_net", "{width: 8}"))
    assert result.ok, [d.format() for d in result.diagnostics]
    assert own_models.CALLS == [8] and result.total_params == 8 * 3 * 9 + 8 + 8 * 36 * 2 + 2


def test_trust_is_by_module_not_by_prefix(own_models, monkeypatch):
    monkeypatch.setenv("NETSPEC_TRUSTED_MODULES", "team")  # not team_models
    assert not netspec.check(spec("team_models:small_net")).ok
    assert own_models.CALLS == []


def test_pip_main_from_a_spec_does_not_run(monkeypatch):
    import pip

    called = []
    monkeypatch.delenv("NETSPEC_TRUSTED_MODULES", raising=False)
    monkeypatch.setattr(pip, "main", lambda *a, **k: called.append((a, k)))
    result = netspec.check(spec("pip:main", "{args: [install, something]}"))
    assert not result.ok and called == []
    assert "is not a torchvision model" in result.errors[0].message


@pytest.mark.parametrize("name", ["get_weight", "get_model_weights", "list_models"])
def test_only_torchvision_builders(name):
    result = netspec.check(spec(f"torchvision:{name}"))
    assert not result.ok
    assert f"torchvision has no model '{name}'" in result.errors[0].message


@pytest.mark.parametrize("key", ["weights", "weights_backbone", "pretrained"])
def test_weights_are_never_downloaded_by_check(key, monkeypatch):
    import torch.hub

    fetched = []
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: fetched.append(a))
    result = netspec.check(spec("torchvision:resnet18", f"{{{key}: DEFAULT}}"))
    assert not result.ok and fetched == []
    [error] = result.errors
    assert (error.line, error.col) == (3, len(f"base_kwargs: {{{key}: ") + 1)  # at DEFAULT
    assert f"base_kwargs: {key} would download weights" in error.message


def test_torchvision_builders_with_plain_arguments_work():
    result = netspec.check(spec("torchvision:resnet18", "{num_classes: 7, weights: null}"))
    assert result.ok and result.output_shape == (7,)


# ---------------------------------------------------------------------- the rule for targets
# netspec calls only model factories: nn.Module classes and functions not declared to
# return anything else; never loaders (torch.hub, torch.load, ...), trusted or not; what a
# factory returns must be an nn.Module, and a factory that exits is an error (exit 1).

FACTORIES = """
import sys

from torch import nn
from torch.hub import load as load_model

CALLS = []


def exits():
    print("a factory that prints and exits")
    sys.exit(0)


def interrupts():
    raise KeyboardInterrupt


def counts() -> int:
    CALLS.append("counts")
    return 3


def returns_a_number():
    CALLS.append("returns_a_number")
    return 3
"""

HUBCONF = """
dependencies = []


def net():
    open(__file__ + ".ran", "w").write("hubconf.py ran")
    from torch import nn
    return nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
"""


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "team_factories.py").write_text(textwrap.dedent(FACTORIES))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("NETSPEC_TRUSTED_MODULES", "team_factories")
    import team_factories

    team_factories.CALLS.clear()
    yield team_factories
    sys.modules.pop("team_factories", None)


def test_torch_hub_load_is_refused_even_when_torch_is_trusted(tmp_path, monkeypatch):
    """NETSPEC_TRUSTED_MODULES=torch let `base: torch.hub:load` run a local hubconf.py."""
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "hubconf.py").write_text(textwrap.dedent(HUBCONF))
    monkeypatch.setenv("NETSPEC_TRUSTED_MODULES", "torch")
    for target in ("torch.hub:load", "torch.hub:load_state_dict_from_url", "torch:load",
                   "torch.jit:load", "torch.utils.model_zoo:load_url"):
        result = netspec.check(spec(target, f"{{repo_or_dir: '{hub}', model: net, "
                                            "source: local}"))
        assert not result.ok
        [error] = result.errors
        assert (error.line, error.col) == (2, 7)
        assert "is a loader" in error.message and "NETSPEC_TRUSTED_MODULES" in error.message
    assert not (hub / "hubconf.py.ran").exists()


def test_a_loader_under_another_name_is_still_a_loader(factories):
    result = netspec.check(spec("team_factories:load_model"))  # torch.hub.load, trusted module
    assert not result.ok
    assert ("'team_factories:load_model' is a loader (torch.hub reads code or pickled objects"
            in result.errors[0].message)


def test_pip_main_is_not_called_by_import(tmp_path, capfd):
    """`netspec import pip:main --kwargs '{"args":["--version"]}'` ran pip, whose
    sys.exit(0) made netspec exit 0 with nothing written."""
    pytest.importorskip("pip")
    out = tmp_path / "pip.yaml"
    status = main(["import", "pip:main", "--kwargs", '{"args": ["--version"]}', "-o", str(out)])
    captured = capfd.readouterr()
    assert status == 2 and not out.exists()
    assert captured.out == ""  # pip --version would have printed its version
    assert captured.err == ("netspec import: 'pip:main' is declared to return int, not an "
                            "nn.Module: netspec calls only functions that build a model\n")


def test_a_factory_that_exits_is_an_error(factories, tmp_path, capfd):
    out = tmp_path / "exits.yaml"
    assert main(["import", "team_factories:exits", "-o", str(out)]) == 1
    captured = capfd.readouterr()
    assert not out.exists() and captured.out == ""  # its print went to stderr
    assert captured.err.endswith("netspec import: team_factories:exits() tried to end the "
                                 "program (sys.exit(0)) instead of returning a model\n")
    result = netspec.check(spec("team_factories:exits"))  # the same as a base
    assert not result.ok and (result.errors[0].line, result.errors[0].col) == (2, 7)
    assert "tried to end the program (sys.exit(0))" in result.errors[0].message


def test_a_module_that_exits_on_import_is_an_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "script_like.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["import", "script_like:make"]) == 1
    finally:
        sys.modules.pop("script_like", None)
    assert capsys.readouterr().err == ("netspec import: importing 'script_like' tried to end "
                                       "the program (sys.exit(3)) instead of returning a model\n")


def test_ctrl_c_inside_a_factory_still_interrupts(factories):
    from netspec.importer.fx import make_model

    with pytest.raises(KeyboardInterrupt):
        make_model("team_factories:interrupts")


def test_a_trusted_function_declared_to_return_a_non_module_is_not_called(factories):
    result = netspec.check(spec("team_factories:counts"))
    assert not result.ok and factories.CALLS == []
    assert result.errors[0].message == ("base: 'team_factories:counts' is declared to return "
                                        "int, not an nn.Module: netspec calls only functions "
                                        "that build a model")


def test_a_trusted_function_returning_a_non_module_is_refused(factories):
    result = netspec.check(spec("team_factories:returns_a_number"))
    assert not result.ok and factories.CALLS == ["returns_a_number"]
    assert result.errors[0].message == ("base: team_factories:returns_a_number() returned a "
                                        "value of type int, not an nn.Module")


def test_trusted_factories_download_nothing_either(own_models, monkeypatch):
    monkeypatch.setenv("NETSPEC_TRUSTED_MODULES", "team_models")
    result = netspec.check(spec("team_models:small_net", "{pretrained: true}"))
    assert not result.ok and own_models.CALLS == []
    assert "base_kwargs: pretrained would download weights" in result.errors[0].message


def test_every_torchvision_builder_is_a_factory():
    """The rule refuses no model torchvision builds (their return annotations are model
    classes)."""
    from torchvision import models

    from netspec.importer.trust import factory_problem

    for name in models.list_models():
        builder = models.get_model_builder(name)
        assert factory_problem(f"torchvision:{name}", "torchvision.models", builder) is None

"""A spec's base: calls only torchvision's model builders, or modules the person running
netspec trusts (NETSPEC_TRUSTED_MODULES): a spec from someone else runs no other code."""

from __future__ import annotations

import sys
import textwrap

import pytest

import netspec

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

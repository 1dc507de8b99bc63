"""The branching language against hand-written torch: groups, from:, merges, blocks,
parameters, if:, repeat and first:, and the built modules under jit.script, fx and compile."""

from __future__ import annotations

import textwrap

import pytest
import torch
import torchvision
from torch import nn
from zoo_helpers import ZOO

import netspec


def spec(body: str, input_shape="[3, 8, 8]", name="Net") -> str:
    return f"netspec: 1\nname: {name}\ninput: {input_shape}\n" + textwrap.dedent(body)


def errors(text: str) -> list[str]:
    result = netspec.check(text)
    return [f"{d.line}:{d.col}: {d.message}" for d in result.errors]


def copy_weights(ours: nn.Module, theirs: nn.Module) -> None:
    ours.load_state_dict(theirs.state_dict(), strict=True)


def test_groups_nest_as_sequential_children():
    model = netspec.build(spec("""
        layers:
          - name: features
            layers:
              - Conv2d: {out_channels: 4, kernel_size: 3}
              - name: inner
                layers:
                  - ReLU
                  - MaxPool2d: 2
          - Flatten:
            name: flatten
          - name: classifier
            layers:
              - Linear: {out_features: 10}
    """))
    assert isinstance(model, nn.Sequential)
    assert isinstance(model.features, nn.Sequential)
    assert isinstance(model.features.inner, nn.Sequential)
    assert list(model.state_dict()) == [
        "features.0.weight", "features.0.bias", "classifier.0.weight", "classifier.0.bias"]
    assert isinstance(model.features.inner[1], nn.MaxPool2d)
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 10)


def test_residual_add_equals_hand_written():
    model = netspec.build(spec("""
        layers:
          - Conv2d: {out_channels: 3, kernel_size: 3, padding: 1}
            name: conv
          - Add:
            from: [conv, input]
            name: add
    """))
    assert not isinstance(model, nn.Sequential)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(model(x), model.conv(x) + x)
    assert [n for n, _ in model.named_children()] == ["conv"]  # Add adds no module


@pytest.mark.parametrize("name", ["x", "torch", "add", "cat", "getattr", "operator"])
def test_layer_names_that_are_also_python_names_build(name):
    """fx writes forward's code with variables named after the layers: a layer named
    torch, x, ... must not shadow what that code uses ('self' is refused by check)."""
    model = netspec.build(spec(f"""
        layers:
          - Conv2d: {{out_channels: 3, kernel_size: 3, padding: 1}}
            name: {name}
          - Conv2d: {{out_channels: 3, kernel_size: 3, padding: 1}}
            name: c2
          - Add:
            from: [{name}, c2]
          - Concat:
            from: [{name}, input]
    """))
    x = torch.randn(2, 3, 8, 8)
    first = model.get_submodule(name)(x)
    expected = torch.cat([first, x], 1)
    assert torch.equal(model(x), expected)
    assert torch.equal(torch.fx.symbolic_trace(model)(x), expected)


def test_concat_defaults_to_channels_and_mul_multiplies():
    model = netspec.build(spec("""
        layers:
          - Conv2d: {out_channels: 4, kernel_size: 1}
            name: a
          - Conv2d: {out_channels: 6, kernel_size: 1}
            name: b
            from: input
          - Concat:
            from: [a, b]
            name: cat
          - Sigmoid:
            name: gate
          - Mul:
            from: [cat, gate]
            name: mul
    """))
    assert netspec.check(spec("""
        layers:
          - Conv2d: {out_channels: 4, kernel_size: 1}
            name: a
          - Conv2d: {out_channels: 6, kernel_size: 1}
            name: b
            from: input
          - Concat:
            from: [a, b]
    """)).output_shape == (10, 8, 8)
    x = torch.randn(2, 3, 8, 8)
    cat = torch.cat([model.a(x), model.b(x)], 1)
    assert torch.allclose(model(x), cat * torch.sigmoid(cat))


def test_merge_errors_name_both_branches():
    [message] = errors(spec("""
        layers:
          - Conv2d: {out_channels: 4, kernel_size: 3}
            name: small
          - Add:
            from: [small, input]
    """))
    assert message.startswith("8:5:")  # the Add entry (line 4 is blank)
    assert "'small'" in message and "'input'" in message
    assert "4×6×6" in message and "3×8×8" in message


def test_block_parameters_defaults_and_arithmetic():
    text = spec("""
        blocks:
          Widen:
            params: {width: required, factor: 2}
            layers:
              - Conv2d: {out_channels: "width * factor", kernel_size: 1}
                name: expand
              - Conv2d: {out_channels: "width // 2", kernel_size: 1}
                name: reduce
        layers:
          - Widen: {width: 8}
            name: w1
          - Widen: {width: 8, factor: 3}
            name: w2
    """)
    result = netspec.check(text)
    assert result.ok, errors(text)
    model = netspec.build(text)
    assert model.w1.expand.out_channels == 16
    assert model.w2.expand.out_channels == 24
    assert model.w2.expand.in_channels == 4  # in_channels inferred from w1's output
    assert model.w2.reduce.out_channels == 4


def test_if_makes_a_sub_layer_optional():
    text = spec("""
        blocks:
          Res:
            params: {planes: required, stride: 1}
            layers:
              - Conv2d: {out_channels: planes, kernel_size: 3, stride: stride, padding: 1}
                name: conv
              - name: downsample
                if: stride != 1 or in_channels != planes
                from: input
                layers:
                  - Conv2d: {out_channels: planes, kernel_size: 1, stride: stride}
              - Add:
                from: [conv, downsample]
                name: add
        layers:
          - Res: {planes: 3}
            name: same
          - Res: {planes: 8, stride: 2}
            name: down
    """)
    model = netspec.build(text)
    assert not hasattr(model.same, "downsample")
    assert isinstance(model.down.downsample, nn.Sequential)
    x = torch.randn(2, 3, 8, 8)
    y = model.same.conv(x) + x
    expected = model.down.conv(y) + model.down.downsample(y)
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_repeat_and_first_build_like_a_resnet_stage():
    text = spec("""
        blocks:
          Unit:
            params: {planes: required, stride: 1}
            layers:
              - Conv2d: {out_channels: planes, kernel_size: 3, stride: stride, padding: 1}
                name: conv
        layers:
          - Unit: {planes: 4}
            name: stage
            repeat: 3
            first: {stride: 2}
          - Conv2d: {out_channels: 2, kernel_size: 1}
            name: extra
            repeat: {count: 2, name: "conv{n}"}
    """)
    model = netspec.build(text)
    assert isinstance(model.stage, nn.Sequential)
    assert [n for n, _ in model.stage.named_children()] == ["0", "1", "2"]
    assert [m.conv.stride for m in model.stage] == [(2, 2), (1, 1), (1, 1)]
    assert [n for n, _ in model.extra.named_children()] == ["conv1", "conv2"]
    assert netspec.check(text).output_shape == (2, 4, 4)


def test_flatten_and_merges_add_no_parameters():
    text = spec("""
        layers:
          - Conv2d: {out_channels: 3, kernel_size: 1}
            name: c
          - Add:
            from: [c, input]
          - Concat:
            from: [c, input]
          - Flatten
          - Linear: {out_features: 2}
            name: fc
    """)
    result = netspec.check(text)
    model = netspec.build(text)
    assert result.total_params == 3 * 3 + 3 + 6 * 64 * 2 + 2
    assert sum(p.numel() for p in model.parameters()) == result.total_params
    assert set(model.state_dict()) == {"c.weight", "c.bias", "fc.weight", "fc.bias"}


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("""
        layers:
          - ReLU:
            from: nowhere
        """, "no earlier entry here is named 'nowhere'"),
        ("""
        blocks:
          B:
            params: {n: required}
            layers:
              - Conv2d: {out_channels: n, kernel_size: 1}
        layers:
          - B: {n: 4, m: 2}
        """, "unknown parameter 'm' for block B"),
        ("""
        blocks:
          B:
            params: {n: required}
            layers:
              - Conv2d: {out_channels: "n * 2", kernel_size: 1}
        layers:
          - B
        """, "needs parameter 'n'"),
        ("""
        layers:
          - ReLU:
            repeat: 0
        """, "repeat"),
        ("""
        blocks:
          B:
            params: {n: 2}
            layers:
              - Conv2d: {out_channels: "__import__('os').getpid()", kernel_size: 1}
        layers:
          - B
        """, "Conv2d"),
    ],
)
def test_branching_mistakes_are_positioned_errors(body, fragment):
    found = errors(spec(body))
    assert found, "expected an error"
    assert any(fragment in m for m in found), found


def test_repeats_that_multiply_past_the_limit_stop_with_an_error(monkeypatch):
    """10,000 copies of a block that repeats a layer 10,000 times would be 10^8 layers:
    check stops at the limit with a positioned error instead of running for hours."""
    from netspec.pipeline import resolve

    monkeypatch.setattr(resolve, "MAX_EXPANDED", 2_000)  # the same rule, a faster test
    text = spec("""
        blocks:
          A:
            layers:
              - ReLU:
                repeat: 10000
        layers:
          - A:
            repeat: 10000
    """)
    # said after two copies, from what one copy adds: not after expanding up to the limit
    assert errors(text) == ["8:9: layer 0 (ReLU, in block A): the network expands to more "
                            "than 2,000 layers here (10,000 copies of about 1 layer; "
                            "repeats multiply, blocks add their layers); make a repeat "
                            "smaller"]
    small = spec("""
        layers:
          - ReLU:
            repeat: 1999
    """)
    assert netspec.check(small).ok


def test_expressions_never_reach_eval(monkeypatch):
    import builtins

    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    text = spec("""
        blocks:
          B:
            params: {n: 2}
            layers:
              - Conv2d: {out_channels: "n * 4 if n > 1 else n", kernel_size: 1}
        layers:
          - B: {n: 3}
          - B: {n: "().__class__.__bases__[0].__subclasses__()"}
    """)
    found = errors(text)
    assert found and all(":" in m for m in found)


@pytest.mark.parametrize("expression", [
    "n.__class__", "open('x')", "[x for x in ()]", "lambda: 1", "n ** 10 ** 10", "'a' * n",
    # results beyond int64, overflowing floats and complex numbers: errors, not hangs or crashes
    "((2 ** 64) ** 64) ** 64 ** 1", "(10.0 ** 64) ** 64", "1e308 * 10", "0.0 ** -1",
    "(-8) ** 0.5", "2 ** 63 + 1",
])
def test_expression_evaluator_refuses_everything_but_arithmetic(expression):
    from netspec.core.expr import ExprError, evaluate

    with pytest.raises(ExprError):
        evaluate(expression, {"n": 3})


def test_expression_evaluator_arithmetic():
    from netspec.core.expr import evaluate

    env = {"planes": 64, "stride": 2, "in_channels": 64}
    assert evaluate("planes * 4", env) == 256
    assert evaluate("planes // 2 + 1", env) == 33
    assert evaluate("stride != 1 or in_channels != planes", env) is True
    assert evaluate("-planes % 7", env) == (-64) % 7
    assert evaluate("2 ** 63", env) == 2**63 and evaluate("-(2 ** 63)", env) == -(2**63)


# ---- the built modules are real modules: script, trace, compile, train ----------------------

@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    model = netspec.build(ZOO / "resnet18.yaml")
    copy_weights(model, reference)
    return model.eval(), reference.eval()


def test_resnet18_forward_is_straight_line_code(resnet18):
    model, _ = resnet18
    assert isinstance(model, nn.Sequential)  # the top level is a chain
    block = model.layer2[0]
    assert isinstance(block, torch.fx.GraphModule)
    code = block.code
    assert "for " not in code and "while " not in code  # no interpreter loop over a table
    assert "self.downsample" in code and "self.conv2" in code


def compiled_without_graph_breaks(model):
    torch._dynamo.reset()
    return torch.compile(model, backend="aot_eager", fullgraph=True)


@pytest.mark.parametrize(
    "transform",
    [torch.jit.script, torch.fx.symbolic_trace, compiled_without_graph_breaks],
    ids=["jit.script", "fx.symbolic_trace", "compile"],
)
def test_resnet18_under_script_trace_and_compile(resnet18, transform):
    model, reference = resnet18
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(transform(model)(x), reference(x), atol=1e-5)


@pytest.mark.parametrize("stem", ["googlenet", "densenet121", "unet_padded", "mobilenet_v2"])
def test_branching_zoo_scripts_and_traces(stem):
    model = netspec.build(ZOO / f"{stem}.yaml").eval()
    shape = netspec.check(ZOO / f"{stem}.yaml").network.input_shape
    x = torch.randn(1, *shape[:1], *[min(s, 96) for s in shape[1:]])
    with torch.no_grad():
        expected = model(x)
        assert torch.allclose(torch.jit.script(model)(x), expected, atol=1e-5)
        assert torch.allclose(torch.fx.symbolic_trace(model)(x), expected, atol=1e-5)


def test_training_gradients_match_torchvision():
    """The in-place residual add must not disturb autograd: same loss, same gradients."""
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(num_classes=1000)
    model = netspec.build(ZOO / "resnet18.yaml")
    copy_weights(model, reference)
    model.train()
    reference.train()
    x = torch.randn(4, 3, 64, 64)
    target = torch.randint(0, 1000, (4,))
    for m in (model, reference):
        nn.functional.cross_entropy(m(x), target).backward()
    theirs = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, theirs[name].grad, atol=1e-5, rtol=1e-4), name


def test_unet_is_572_to_388_and_padded_keeps_the_size():
    valid = netspec.check(ZOO / "unet.yaml")
    padded = netspec.check(ZOO / "unet_padded.yaml")
    assert valid.network.input_shape == (1, 572, 572)
    assert valid.output_shape == (2, 388, 388)
    assert padded.output_shape[1:] == padded.network.input_shape[1:]
    model = netspec.build(ZOO / "unet_padded.yaml").eval()
    x = torch.randn(1, *padded.network.input_shape[:1], 64, 64)
    with torch.no_grad():
        assert model(x).shape[2:] == (64, 64)


def test_default_names_follow_torchvision(resnet18):
    model, _ = resnet18
    keys = set(model.state_dict())
    for key in ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
                "layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight", "fc.bias"]:
        assert key in keys
    assert "layer1.0.downsample.0.weight" not in keys
    vgg = netspec.build(ZOO / "vgg16.yaml")
    assert {"features.0.weight", "classifier.6.weight"} <= set(vgg.state_dict())


def test_zoo_specs_fit_on_a_screen_or_two():
    """Blocks, repeats and parameters carry the structure: a zoo spec is a screen or two,
    even GoogLeNet with its aux heads or a ViT."""
    for path in ZOO.glob("*.yaml"):
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        assert len(lines) <= 120, (path.name, len(lines))


def test_crop_to_is_one_source():
    """Generated files define crop_to from the declaration's text; build calls
    netspec.ops.torch_side.crop_to: they are the same code."""
    import inspect

    from netspec.ops import REGISTRY, torch_side

    assert inspect.getsource(torch_side.crop_to).rstrip() == REGISTRY["CropTo"].code.helper

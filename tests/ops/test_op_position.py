"""RelativePositionIndex and RelativePositionBias (netspec/ops/position.py): a window's
relative position bias as torchvision's MaxViT attention and Swin compute it."""

from __future__ import annotations

import inspect

import torch
from conftest import examples
from function_ops import build_and_codegen_agree, summary_and_render
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.maxvit import RelativePositionalMultiHeadAttention

import netspec
from netspec.ops import REGISTRY, torch_side

# a window of 7×7 positions and 4 heads: the bias added to attention logits (B×4×49×49)
SPEC = """\
netspec: 1
name: Biased
input: [4, 49, 49]
layers:
  - Parameter: {shape: [169, 4], init: trunc_normal, std: 0.02}
    name: relative_position_bias_table
  - RelativePositionIndex: {window_size: 7}
    name: relative_position_index
  - RelativePositionBias: {window_size: 7}
    from: [relative_position_bias_table, relative_position_index]
    name: pos_bias
  - Add:
    from: [input, pos_bias]
"""


def spec(rows: int, heads: int, window: tuple, index_window: tuple) -> str:
    return (SPEC.replace("[169, 4]", f"[{rows}, {heads}]")
            .replace("RelativePositionIndex: {window_size: 7}",
                     f"RelativePositionIndex: {{window_size: {list(index_window)}}}")
            .replace("RelativePositionBias: {window_size: 7}",
                     f"RelativePositionBias: {{window_size: {list(window)}}}")
            .replace("input: [4, 49, 49]", f"input: [{heads}, {window[0] * window[1]}, "
                                           f"{window[0] * window[1]}]"))


@st.composite
def case(draw):
    """A window, heads, a table of the rows it needs (now and then one fewer or more), and
    the index of that window or, now and then, of a window of other positions."""
    h, w, heads = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    rows = (2 * h - 1) * (2 * w - 1) + draw(st.sampled_from([0, 0, 0, -1, 1]))
    index_window = (h, w)
    if draw(st.integers(0, 4)) == 0:
        index_window = draw(st.tuples(st.integers(1, 4), st.integers(1, 4))
                            .filter(lambda s: s[0] * s[1] != h * w))
    return max(rows, 1), heads, (h, w), index_window


@settings(max_examples=examples(100), deadline=None)
@given(drawn=case())
def test_relative_position_bias_agrees_with_torch(drawn):
    """netspec accepts exactly when torchvision's gather (table[index.view(-1)].view(N, N,
    -1) for the N positions of the window) runs, with its shape; the index is
    torchvision's _get_relative_position_index."""
    from torchvision.models.maxvit import _get_relative_position_index

    rows, heads, window, index_window = drawn
    n = window[0] * window[1]
    table, index = torch.zeros(rows, heads), _get_relative_position_index(*index_window)
    try:
        theirs = tuple(table[index.view(-1)].view(n, n, -1).permute(2, 0, 1)
                       .unsqueeze(0).shape)
    except (RuntimeError, IndexError):
        theirs = None
    result = netspec.check(spec(rows, heads, window, index_window))
    ours = {r.name: r.output_shape for r in result.layers} if result.ok else None
    assert (ours["pos_bias"] if ours else None) == theirs, (drawn, result.errors)
    warned = any("reads only the first" in d.message for d in result.warnings)
    assert warned == (result.ok and rows > (2 * window[0] - 1) * (2 * window[1] - 1))


def test_refusals_name_the_numbers():
    errors = netspec.check(spec(168, 4, (7, 7), (7, 7))).errors
    assert "the table 168×4 from 'relative_position_bias_table' must be 169×heads" in \
        errors[0].message, [d.message for d in errors]
    errors = netspec.check(spec(169, 4, (7, 7), (6, 6))).errors
    assert "the index 36×36 from 'relative_position_index' must be 49×49" in \
        errors[0].message, [d.message for d in errors]
    batched = SPEC.replace("from: [relative_position_bias_table, relative_position_index]",
                           "from: [input, relative_position_index]")
    errors = netspec.check(batched).errors
    assert "takes tensors without a batch dimension (a Parameter, a buffer) whole, but " \
        "'input' is a batch of 4×49×49" in errors[0].message, [d.message for d in errors]


def test_generated_files_define_what_build_runs():
    for op, function in (("RelativePositionIndex", torch_side.relative_position_index),
                         ("RelativePositionBias", torch_side.relative_position_bias)):
        assert inspect.getsource(function).rstrip() == REGISTRY[op].code.helper


def test_build_codegen_summary_render_against_torchvision(tmp_path):
    """The buffer holds torchvision's index under its key; the bias is torchvision's
    get_relative_positional_bias(), built and generated."""
    reference = RelativePositionalMultiHeadAttention(128, 32, 49)
    model = netspec.build(SPEC)
    assert list(model.state_dict()) == ["relative_position_bias_table",
                                        "relative_position_index"]
    assert model.relative_position_index.dtype == torch.int64
    model.load_state_dict({k: reference.state_dict()[k] for k in model.state_dict()},
                          strict=True)
    x = torch.randn(2, 4, 49, 49)
    with torch.no_grad():
        assert torch.equal(model(x), x + reference.get_relative_positional_bias())
    source = build_and_codegen_agree(
        SPEC, lambda m, x: x + torch_side.relative_position_bias(
            m.relative_position_bias_table, m.relative_position_index),
        [x], tmp_path, "Biased")
    assert 'self.register_buffer("relative_position_index", relative_position_index(7, 7))' \
        in source, source
    rows, dot = summary_and_render(SPEC)
    assert rows["relative_position_bias_table"].params == 169 * 4
    assert rows["relative_position_index"].buffers == 49 * 49
    assert rows["relative_position_index"].params == 0
    assert "window 7" in dot


def test_torchscript_export(tmp_path):
    """Scripted and verified at two batches (ONNX: MaxViT's reduced export)."""
    from netspec.emit.export import export

    report = export(SPEC, "torchscript", tmp_path / "biased.ts")
    assert report.ok and len(report.differences) == 2, report


def test_the_importer_reads_torchvision_s_index_back():
    """read_buffer: the window whose index a buffer holds, persistent or not (timm's Swin
    registers it non-persistent), and none for other values."""
    from torchvision.models.maxvit import _get_relative_position_index

    read = REGISTRY["RelativePositionIndex"].read_buffer
    for window in ((1, 1), (2, 3), (7, 7), (4, 2)):
        values = _get_relative_position_index(*window).tolist()
        args = read(values, True)
        assert torch.equal(torch_side.make_buffer("RelativePositionIndex", args),
                           _get_relative_position_index(*window)), window
        assert read(values, False) == {**args, "persistent": False}
    assert read([[0, 1], [1, 0]], True) is None


def test_the_class_token_s_index_is_timm_s():
    """class_token: timm's gen_relative_position_index(class_token=True) (BEiT), made and
    read back; the bias needs the table's 3 rows more and is (N+1)×(N+1)."""
    from timm.layers.pos_embed_rel import gen_relative_position_index

    read = REGISTRY["RelativePositionIndex"].read_buffer
    for window in ((1, 1), (2, 3), (3, 3), (4, 2)):
        theirs = gen_relative_position_index(window, class_token=True)
        args = read(theirs.tolist(), False)
        assert args["class_token"] is True and args["persistent"] is False, args
        assert torch.equal(torch_side.make_buffer("RelativePositionIndex", args), theirs)
    text = (SPEC.replace("RelativePositionIndex: {window_size: 7}",
                         "RelativePositionIndex: {window_size: 7, class_token: true}")
            .replace("RelativePositionBias: {window_size: 7}",
                     "RelativePositionBias: {window_size: 7, class_token: true}"))
    errors = netspec.check(text).errors
    assert "the table 169×4 from 'relative_position_bias_table' must be 172×heads: a row for " \
        "each of the (2·7-1)·(2·7-1) relative offsets of a 7×7 window and 3 for the class " \
        "token" in errors[0].message, [d.message for d in errors]
    result = netspec.check(text.replace("[169, 4]", "[172, 4]").replace("[4, 49, 49]",
                                                                        "[4, 50, 50]"))
    assert result.ok and result.layers[2].output_shape == (1, 4, 50, 50), result.errors


def test_timm_s_swin_and_beit_bias_is_read_as_the_op():
    """table[index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0) of
    a module's own table and index (timm's _get_rel_pos_bias; fx records index.view(-1) as
    a constant of the buffer's memory) is one call of relative_position_bias, whose
    arguments are read off the buffer; other chains are left as they are."""
    import timm.models.beit as beit
    import timm.models.swin_transformer as swin

    from netspec.importer.buffers import OP_ARGUMENTS
    from netspec.importer.fx import _traced

    for module, args in ((swin.WindowAttention(16, 2, head_dim=8, window_size=3),
                          {"window_size": 3}),
                         (beit.Attention(16, 2, window_size=(2, 3)),
                          {"window_size": [2, 3], "class_token": True})):
        graph = _traced(module.eval())
        calls = [n for n in graph.nodes if n.target is torch_side.relative_position_bias]
        assert len(calls) == 1 and calls[0].meta[OP_ARGUMENTS] == args, graph
        assert [str(n.target) for n in calls[0].all_input_nodes] == [
            "relative_position_bias_table", "relative_position_index"]
        assert not [n for n in graph.nodes if n.op == "call_method" and n.target == "permute"
                    and n.args[1:] == (2, 0, 1)]
        with torch.no_grad():
            assert torch.equal(torch_side.relative_position_bias(
                module.relative_position_bias_table, module.relative_position_index),
                module._get_rel_pos_bias())

    class Other(torch.nn.Module):  # the table permuted otherwise: not the op
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Parameter(torch.zeros(9, 2))
            self.register_buffer("index", torch_side.relative_position_index(2, 2))

        def forward(self, x):
            return x + self.table[self.index.view(-1)].view(4, 4, -1).permute(2, 1, 0)

    graph = _traced(Other())
    assert not [n for n in graph.nodes if n.target is torch_side.relative_position_bias]

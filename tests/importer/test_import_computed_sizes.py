"""Sizes computed in forward.  Reshapes that compute more than one are imported as the
Flatten and Unflatten entries they are (netspec/importer/regroup.py): torchvision's MaxViT
partitions a map into windows with x.reshape(B, C, H // p, p, W // p, p).  The built model
reads the split sizes from the tensor when it runs, so it matches the reference at other
sizes too; one reading every size of a tensor in order is a ReshapeAs of it.  A library
function that hands its tensor back unchanged at every size (torchvision's MViT _unsqueeze
for an input of the rank it wants) is that tensor; modules
passing sizes to one another are refused by name.  Two-operand einsums that are batched
matrix products are imported as Matmul.  (Pads computed in forward:
tests/ops/test_op_pad_to_multiple.py.)"""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn
from torchvision.models.maxvit import WindowDepartition, WindowPartition
from torchvision.models.video.mvit import _squeeze, _unsqueeze

import netspec
from netspec.importer.fx import ImportProblem, _einsum_matmul, dumps, model_to_spec
from netspec.importer.regroup import apply, regrouping
from netspec.pipeline.imported import verify

# as torchvision's mvit.py marks them: fx records their calls here as one step each
torch.fx.wrap("_unsqueeze")
torch.fx.wrap("_squeeze")


def _import(model, shape):
    imported = model_to_spec(model.eval(), shape)
    text = dumps(imported.data)
    assert verify(imported, text).ok, text
    built = netspec.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    return text, built


def _same(built, model, x):
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-6, rtol=0)


class Partitioned(nn.Module):
    """A conv, then the map cut into p×p windows as torchvision's WindowPartition writes it
    inline, a Linear over the channels of every token."""

    def __init__(self, p=4, channels=8):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 1)
        self.fc = nn.Linear(channels, channels)
        self.p = p

    def forward(self, x):
        x = self.conv(x)
        B, C, H, W = x.shape
        p = self.p
        x = x.reshape(B, C, H // p, p, W // p, p)
        x = x.permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(B, (H // p) * (W // p), p * p, C)
        return self.fc(x)


def test_window_partition_reads_its_sizes_when_it_runs():
    model = Partitioned()
    text, built = _import(model, (3, 16, 16))
    assert text.count("- Unflatten: {dim: 2, unflattened_size: [-1, 4]}") == 1, text
    assert text.count("- Unflatten: {dim: 4, unflattened_size: [-1, 4]}") == 1, text
    assert "- Flatten: {end_dim: 2}" in text and \
        "- Flatten: {start_dim: 2, end_dim: 3}" in text, text
    for shape in [(2, 3, 16, 16), (1, 3, 24, 32), (3, 3, 8, 40)]:
        _same(built, model, torch.randn(shape))


class TorchvisionWindows(nn.Module):
    """torchvision's own WindowPartition and WindowDepartition modules, called with their
    constants as MaxViT's PartitionAttentionLayer calls them."""

    def __init__(self):
        super().__init__()
        self.partition_op = WindowPartition()
        self.fc = nn.Linear(6, 6)
        self.departition_op = WindowDepartition()

    def forward(self, x):
        x = self.partition_op(x, 4)
        x = self.fc(x)
        return self.departition_op(x, 4, 3, 2)


def test_torchvision_window_partition_modules_round_trip():
    model = TorchvisionWindows()
    text, built = _import(model, (6, 12, 8))
    assert "name: partition_op" in text and "name: departition_op" in text, text
    _same(built, model, torch.randn(2, 6, 12, 8))


class FoldsWindows(nn.Module):
    """timm's window_partition: the windows folded into the batch."""

    def forward(self, x):
        B, H, W, C = x.shape
        x = x.view(B, H // 4, 4, W // 4, 4, C).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, 4, 4, C)


def test_a_reshape_into_the_batch_is_refused_by_name():
    with pytest.raises(ImportProblem, match="into or out of the batch"):
        model_to_spec(nn.Sequential(nn.Linear(5, 5), FoldsWindows()), (8, 8, 5))


class TwoFree(nn.Module):
    """Tokens back on a W×H grid whose W and H both follow the input: two sizes in one
    split, which no -1 can say (in the input's own order, B, C, H, W, it is a ReshapeAs)."""

    def __init__(self, order: tuple[int, ...] = (0, 1, 3, 2)):
        super().__init__()
        self.order = order

    def forward(self, x):
        sizes = x.shape
        return x.flatten(2).reshape(*(sizes[i] for i in self.order))


def test_a_split_of_two_input_sizes_is_refused_by_name():
    with pytest.raises(ImportProblem, match="more than one of them following the input"):
        model_to_spec(nn.Sequential(nn.Conv2d(3, 4, 1), TwoFree()), (3, 8, 6))


def test_a_reshape_to_every_size_of_a_tensor_is_reshape_as_it():
    """x.reshape(B, C, H, W), every size read from x in order: x.reshape_as(x), which runs
    at any input size (timm's Swin block: B, H, W, C = x.shape ... x.reshape(B, H, W, C))."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), TwoFree((0, 1, 2, 3))).eval()
    imported = model_to_spec(model, (3, 8, 6))
    entry = imported.data["layers"][1]["layers"][-1]
    assert entry["ReshapeAs"] is None and entry["from"][1] == "input", entry
    built = netspec.build(dumps(imported.data)).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    for shape in ((2, 3, 8, 6), (1, 3, 5, 7)):
        x = torch.randn(shape)
        with torch.no_grad():
            assert torch.equal(built(x), model(x)), shape


@pytest.mark.parametrize("runs, steps", [
    ([((1, 6, 4), (1, 24))], [("merge", {"start_dim": 1, "end_dim": 2})]),
    ([((1, 6, 4), (1, 4, 6))], [("merge", {"start_dim": 1, "end_dim": 2}),
                                ("split", {"dim": 1, "unflattened_size": [4, 6]})]),
    ([((1, 5, 12), (1, 5, 3, 4)), ((1, 5, 24), (1, 5, 6, 4))],
     [("split", {"dim": 2, "unflattened_size": [-1, 4]})]),
    ([((1, 5, 1), (1, 5))], [("merge", {"start_dim": 1, "end_dim": 2})]),
    # MaxViT's last stage: one window at the spec's input leaves 1×1×1 ambiguous; the run
    # with two windows across shows the (H/p, W/p) and (p, p) merges
    ([((1, 1, 1, 7, 7, 8), (1, 1, 49, 8)), ((1, 2, 1, 7, 7, 8), (1, 2, 49, 8)),
      ((1, 1, 2, 7, 7, 8), (1, 2, 49, 8))],
     [("merge", {"start_dim": 1, "end_dim": 2}), ("merge", {"start_dim": 2, "end_dim": 3})]),
])
def test_regrouping_gives_each_runs_output(runs, steps):
    assert regrouping(runs) == steps
    for before, after in runs:
        assert apply(steps, before) == after


def test_a_grouping_that_holds_at_one_size_only_is_refused():
    # x.reshape(B, W, H): a 4×6 sample keeps its dims, an 8×6 one becomes 6×8, which no
    # grouping of either run gives (the other run's has two sizes following the input)
    runs = [((1, 4, 6), (1, 4, 6)), ((1, 8, 6), (1, 6, 8))]
    assert "no flattens and unflattens give both" in regrouping(runs)


def test_a_grouping_read_off_another_run():
    # x.reshape(B, 4, -1) of a 4×6 sample keeps its dims: at 8×6 it shows the merge and split
    runs = [((1, 4, 6), (1, 4, 6)), ((1, 8, 6), (1, 4, 12))]
    steps = [("merge", {"start_dim": 1, "end_dim": 2}),
             ("split", {"dim": 1, "unflattened_size": [4, -1]})]
    assert regrouping(runs) == steps


@pytest.mark.parametrize("equation, how", [
    ("B G H I D, B G H J D -> B G H I J", (False, True, False)),
    ("bhij,bhjd->bhid", (False, False, False)),
    ("bji,bjk->bki", (True, False, True)),
    ("bij,bjk->bk", None),
    ("bij,bjk->bjk", None),
    ("bii,bij->bij", None),
    ("bij,cjk->bik", None),
])
def test_einsum_matmul_equations(equation, how):
    assert _einsum_matmul(equation) == how


class Einsums(nn.Module):
    def __init__(self, equation):
        super().__init__()
        self.qk = nn.Linear(8, 8)
        self.equation = equation

    def forward(self, x):
        y = self.qk(x)
        return torch.einsum(self.equation, x, y)


@pytest.mark.parametrize("equation", ["bhid,bhjd->bhij", "bhij,bhjd->bhid", "bhji,bhjd->bhdi"])
def test_einsum_matmuls_round_trip(equation):
    model = Einsums(equation)
    text, built = _import(model, (2, 8, 8))
    assert "Matmul" in text and "einsum" not in text, text
    _same(built, model, torch.randn(3, 2, 8, 8))


def test_another_einsum_is_refused_by_name():
    with pytest.raises(ImportProblem, match="einsum"):
        model_to_spec(Einsums("bhid,bhjd->bhd"), (2, 8, 8))


class RankAdapted(nn.Module):
    """torchvision's MViT Pool: _unsqueeze adds a dim to an input of one rank less than it
    wants, _squeeze takes it off again (the rank it saw passed between them)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        x, rank = _unsqueeze(x, 4, 1)
        return _squeeze(self.fc(x), 4, 1, rank)


def test_a_function_handing_back_its_tensor_is_that_tensor():
    model = RankAdapted()
    text, built = _import(model, (2, 5, 6))  # rank 4 with the batch: nothing to add
    assert [next(iter(e)) for e in yaml.safe_load(text)["layers"]] == ["Linear"], text
    _same(built, model, torch.randn(3, 4, 7, 6))


def test_a_function_that_changes_its_tensor_is_refused_by_name():
    with pytest.raises(ImportProblem, match=r"_unsqueeze .* has no netspec equivalent"):
        model_to_spec(RankAdapted(), (5, 6))  # rank 3: _unsqueeze adds a dim


class SizedBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, size):
        return self.fc(x).reshape(x.shape[0], size[0], size[1], -1).flatten(1, 2)


class PassesSizes(nn.Module):
    """timm's PVT v2 stage: blocks given the map's H and W besides the tokens."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([SizedBlock(), SizedBlock()])

    def forward(self, x):
        B, H, W, C = x.shape
        x = x.reshape(B, -1, C)
        for block in self.blocks:
            x = block(x, (H, W))
        return x


class TupleBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x), x.shape[1]


class ReturnsSizes(nn.Module):
    """torchvision's MViT: x, thw = block(x, thw), each block handing its sizes on."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([TupleBlock(), TupleBlock()])

    def forward(self, x):
        for block in self.blocks:
            x, _size = block(x)
        return x


@pytest.mark.parametrize("model, message", [
    (PassesSizes(), "with .* besides its input, values computed in forward"),
    (ReturnsSizes(), "'blocks.0' returns a tuple whose 2 elements its forward takes apart"),
])
def test_modules_passing_sizes_are_refused_by_name(model, message):
    with pytest.raises(ImportProblem, match=message):
        model_to_spec(model, (3, 5, 4))

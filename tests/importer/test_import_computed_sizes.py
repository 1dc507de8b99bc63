"""Sizes computed in forward.  Reshapes that compute more than one are imported as the
Flatten and Unflatten entries they are (netspec/importer/regroup.py): torchvision's MaxViT
partitions a map into windows with x.reshape(B, C, H // p, p, W // p, p).  The built model
reads the split sizes from the tensor when it runs, so it matches the reference at other
sizes too; one reading every size of a tensor in order is a ReshapeAs of it.  A library
function that hands its tensor back unchanged at every size (torchvision's MViT _unsqueeze
for an input of the rank it wants) is that tensor; sizes a module passes a child beside its
tensor are the tensor they are read from (timm's PVT v2), a split into them UnflattenAs; a
module handing sizes back is refused by name.  Two-operand einsums that are batched matrix
products are imported as Matmul.  (Pads computed in forward:
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


class TwoFreeComputed(nn.Module):
    """The same split into sizes computed from the input's (H * 1), read from no tensor."""

    def forward(self, x):
        B, C, H, W = x.shape
        return x.flatten(2).reshape(B, C, H * 1, W)


class TwoFreeAfterAny(nn.Module):
    """The same split with the channels left to -1: two sizes of the input in one split,
    not every size of it in order (which is a ReshapeAs)."""

    def forward(self, x):
        B, _, H, W = x.shape
        return x.flatten(2).reshape(B, -1, H, W)


def test_a_split_into_two_sizes_of_a_tensor_reads_them_from_it():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), TwoFreeAfterAny())
    text, built = _import(model, (3, 8, 6))
    (entry,) = [e for e in yaml.safe_load(text)["layers"][1]["layers"] if "UnflattenAs" in e]
    assert entry["UnflattenAs"] == {"dim": 2, "start_dim": 2, "end_dim": 3}, text
    assert entry["from"][1] == "input", text
    for x in (torch.randn(2, 3, 8, 6), torch.randn(1, 3, 5, 9)):
        _same(built, model, x)


def test_a_split_into_sizes_of_a_tensor_out_of_order_is_refused_by_name():
    with pytest.raises(ImportProblem, match=r"sizes read from x at dims \[3, 2\], not one "
                                            "tensor's consecutive dims"):
        model_to_spec(nn.Sequential(nn.Conv2d(3, 4, 1), TwoFree()), (3, 8, 6))


def test_a_split_of_two_computed_input_sizes_is_refused_by_name():
    with pytest.raises(ImportProblem, match="more than one of them following the input"):
        model_to_spec(nn.Sequential(nn.Conv2d(3, 4, 1), TwoFreeComputed()), (3, 8, 6))


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


def test_modules_handing_their_sizes_on_are_refused_by_name():
    with pytest.raises(ImportProblem, match=r"'blocks.0' returns a tuple whose 2 elements its "
                                            r"forward takes apart"):
        model_to_spec(ReturnsSizes(), (3, 5, 4))


def test_sizes_passed_beside_the_tokens_are_the_tensor_they_are_read_from():
    """timm's PVT v2: blk(x, (H, W)) along a ModuleList.  The blocks' group takes the map
    the sizes are read from as another input, each block reads them from it, so the spec
    matches the module at sizes other than the spec's."""
    model = PassesSizes()
    text, built = _import(model, (3, 5, 4))
    blocks = yaml.safe_load(text)["layers"][-1]
    assert blocks["inputs"] == ["x", "size"] and blocks["from"] == ["reshape", "input"], text
    assert [b["from"] for b in blocks["layers"]] == [["x", "size"], ["0", "size"]], text
    for x in (torch.randn(2, 3, 5, 4), torch.randn(1, 6, 2, 4)):
        _same(built, model, x)


class Regrid(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, feat_size):
        H, W = feat_size
        return self.fc(x).transpose(1, 2).reshape(x.shape[0], -1, H, W).flatten(2)\
            .transpose(1, 2)


class Nested(nn.Module):
    """A module handing the sizes it is given on to its children, as a list, by keyword."""

    def __init__(self):
        super().__init__()
        self.first, self.second = Regrid(), Regrid()

    def forward(self, x, feat_size):
        return self.second(self.first(x, feat_size), feat_size=[feat_size[0], feat_size[1]])


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.body = Nested()

    def forward(self, x):
        x = self.stem(x)
        return self.body(x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3]))


def test_sizes_are_handed_on_through_modules_in_the_tensor_they_are_read_from():
    model = Outer()
    text, built = _import(model, (3, 6, 4))
    body = yaml.safe_load(text)["layers"][-1]
    assert body["from"] == ["transpose", "stem"] and body["inputs"] == ["x", "feat_size"], text
    assert [e["from"] for e in body["layers"]] == [["x", "feat_size"], ["first", "feat_size"]]
    for entry in body["layers"]:
        assert any(e.get("UnflattenAs") == {"dim": 2, "start_dim": 2, "end_dim": 3}
                   for e in entry["layers"]), text
    for x in (torch.randn(2, 3, 6, 4), torch.randn(1, 3, 3, 7)):
        _same(built, model, x)


class TwoSources(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Regrid()

    def forward(self, x):
        return self.block(x.flatten(2).transpose(1, 2), (x.shape[2], x.transpose(2, 3).shape[2]))


def test_sizes_read_from_two_tensors_are_refused_by_name():
    with pytest.raises(ImportProblem, match=r"'block' .* is called with 'feat_size', "
                                            r"sizes read from 'x', 'transpose_1'; a spec "
                                            r"passes"):
        model_to_spec(TwoSources(), (4, 6, 4))


def test_a_split_into_sizes_read_from_another_tensor():
    """Both split sizes follow the input, and both are read from another tensor: a split
    into its sizes, which every run's output gives."""
    runs = [((1, 4, 24), (1, 4, 6, 4)), ((1, 4, 48), (1, 4, 12, 4)), ((1, 4, 48), (1, 4, 6, 8))]
    steps = [("split_read", {"dim": 2, "dims": [2, 3]})]
    assert regrouping(runs, frozenset({2, 3})) == steps
    assert "more than one of them following the input" in regrouping(runs)
    for before, after in runs:
        assert apply(steps, before, after) == after

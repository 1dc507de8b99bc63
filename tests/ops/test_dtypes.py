"""Input dtypes against torch: netspec builds float32 parameters, so a float64 or half input
into a layer with parameters fails in PyTorch, except where PyTorch's CPU norms mix them."""

import pytest
from oracle import assert_agree

from netspec.ops import REGISTRY

CASES = [
    ("Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3}, (3, 6, 6)),
    ("ConvTranspose1d", {"in_channels": 4, "out_channels": 2, "kernel_size": 2}, (4, 5)),
    ("Linear", {"in_features": 3, "out_features": 4}, (3,)),
    ("Linear", {"in_features": 3, "out_features": 4, "bias": False}, (2, 3)),
    ("PReLU", {}, (3,)),
    ("BatchNorm1d", {"num_features": 4}, (4, 3)),
    ("BatchNorm2d", {"num_features": 4}, (4, 3, 3)),
    ("BatchNorm2d", {"num_features": 4, "affine": False}, (4, 3, 3)),
    ("InstanceNorm1d", {"num_features": 4, "affine": True}, (4, 3)),
    ("GroupNorm", {"num_groups": 2, "num_channels": 4}, (4, 3)),
    ("LayerNorm", {"normalized_shape": 3}, (4, 3)),
    ("RMSNorm", {"normalized_shape": 3}, (4, 3)),
    ("LSTM", {"input_size": 3, "hidden_size": 2, "batch_first": True}, (4, 3)),
    ("TransformerEncoderLayer", {"d_model": 4, "nhead": 1, "batch_first": True}, (3, 4)),
    ("ReLU", {}, (3, 4)),
    ("MaxPool2d", {"kernel_size": 2}, (3, 4, 4)),
    ("Flatten", {}, (3, 4)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize(
    ("type_name", "kwargs", "sample"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_input_dtype_agrees_with_torch(type_name, kwargs, sample, dtype):
    assert type_name in REGISTRY
    assert_agree(type_name, kwargs, sample, dtype)

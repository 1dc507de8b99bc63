"""The merge operations as torch functions, called from built forward code.

Imported only when building (imports torch)."""

from __future__ import annotations

import operator

import torch
from torch import Tensor


def crop_to(x: Tensor, like: Tensor) -> Tensor:
    """Center-crop every spatial dim of ``x`` (dims 2..) to the size of ``like``'s."""
    for dim in range(2, x.dim()):
        start = (x.size(dim) - like.size(dim)) // 2
        x = x.narrow(dim, start, like.size(dim))
    return x


# merge type -> (function, how it combines n inputs)
PAIRWISE = {"Add": operator.add, "Mul": operator.mul}
# into the first input, when build.py knows nothing else holds it (``out += identity``)
IN_PLACE = {"Add": operator.iadd, "Mul": operator.imul}
CONCAT = torch.cat

"""A reshape whose sizes are computed in forward, read as the flattens and unflattens it is.

torchvision's WindowPartition writes ``x.reshape(B, C, H // P, P, W // P, P)``: two sizes
computed from the input, which a netspec Reshape (sizes kept from the input, one -1) cannot
say.  What the reshape does is split H into (H/P, P) and W into (W/P, P): consecutive dims
of its input split or merged, which ``Unflatten(2, [-1, 7])`` and ``Unflatten(4, [-1, 7])``
say at every input size, the split sizes that follow the input inferred (-1) when the model
runs.  The grouping is read off the reshape's input and output shapes in runs of the module
at the spec's input and at other sizes of it (each of its input's dims made larger, where
the module still runs), and must give every run's output from that run's input.

Nothing here imports torch: shapes in, entries out.
"""

from __future__ import annotations

import math

Shape = tuple[int, ...]


def groups(before: Shape, after: Shape) -> list[tuple[range, range]] | None:
    """Consecutive dims of ``before`` and of ``after`` with equal products, in order, each
    pair (its dims in before, its dims in after); None when the shapes hold different
    counts.  A dim of size 1 left over at the end joins the last group."""
    if math.prod(before) != math.prod(after) or not before or not after or \
            0 in before or 0 in after:
        return None
    found: list[tuple[range, range]] = []
    i = j = 0
    while i < len(before) and j < len(after):
        i0, j0 = i, j
        left, right = before[i], after[j]
        i, j = i + 1, j + 1
        while left != right:
            if left < right:
                left *= before[i]
                i += 1
            else:
                right *= after[j]
                j += 1
        found.append((range(i0, i), range(j0, j)))
    last_before, last_after = found[-1]
    found[-1] = (range(last_before.start, len(before)), range(last_after.start, len(after)))
    return found


def regrouping(runs: list[tuple[Shape, Shape]], read: frozenset[int] = frozenset()
               ) -> list[tuple[str, dict]] | str:
    """The steps that turn
    each run's input shape into its output shape (``runs``: (input, output) per run, batch
    included, the spec's input first): ("merge", Flatten's start_dim and end_dim) and
    ("split", Unflatten's dim and unflattened_size), counting the batch, a split size that
    differs between runs written -1, or ("split_read", the dim and the output's dims it
    becomes) where each size it splits into is one the forward reads from another tensor
    (``read``: those dims of the output, PVT v2's x.reshape(B, H, W, -1) with H, W read from
    the map the tokens came from); or
    why there are none: the batch would join other dims, or a split has more than one size
    that follows the input.  The grouping is read off the spec's run, else off another run
    where sizes of 1 left it ambiguous (MaxViT's last stage: 1×1×1×7×7×C into 1×1×49×C at
    the spec's input is 1×1×2×7×7×C into 1×2×49×C at a wider one)."""
    first = None
    for before, after in runs:
        steps = _steps(runs, before, after, read)
        if not isinstance(steps, str):
            return steps
        first = first or steps
    return first


def _steps(runs: list[tuple[Shape, Shape]], before: Shape, after: Shape,
           read: frozenset[int] = frozenset()) -> list[tuple[str, dict]] | str:
    """regrouping's steps with the groups of one run (before -> after), or why not."""
    found = groups(before, after)
    if found is None:
        return f"it turns {_shown(before)} into {_shown(after)}"
    if found[0] != (range(0, 1), range(0, 1)):
        return (f"it turns {_shown(before)} into {_shown(after)}, moving elements into or out "
                "of the batch")
    steps: list[tuple[str, dict]] = []
    for ins, outs in found[1:]:
        at = outs.start  # the dims before this group are in the output's form already
        if len(ins) > 1:
            steps.append(("merge", {"start_dim": at, "end_dim": at + len(ins) - 1}))
        if len(outs) > 1 and all(k in read for k in outs):
            steps.append(("split_read", {"dim": at, "dims": list(outs)}))
        elif len(outs) > 1:
            sizes = [after[k] if all(run[1][k] == after[k] for run in runs) else -1
                     for k in outs]
            if sizes.count(-1) > 1:
                return (f"it splits {'×'.join(str(before[k]) for k in ins)} into "
                        f"{'×'.join(str(after[k]) for k in outs)}, more than one of them "
                        "following the input's size; one can be inferred (-1)")
            steps.append(("split", {"dim": at, "unflattened_size": sizes}))
    for start, end in runs:
        if tuple(end) != apply(steps, tuple(start), tuple(end)):
            return (f"it turns {_shown(start)} into {_shown(end)} where {_shown(before)} "
                    f"became {_shown(after)}: no flattens and unflattens give both")
    return steps


def apply(steps: list[tuple[str, dict]], shape: Shape, read: Shape = ()) -> Shape | None:
    """``shape`` after the steps as torch would make it; None where torch would refuse.
    ``read``: the sizes a "split_read" takes, at the output's dims it names."""
    out = list(shape)
    for kind, args in steps:
        if kind == "merge":
            start, end = args["start_dim"], args["end_dim"]
            if end >= len(out):
                return None
            out[start:end + 1] = [math.prod(out[start:end + 1])]
        elif kind == "split_read":
            dim, sizes = args["dim"], [read[k] if k < len(read) else 0 for k in args["dims"]]
            if dim >= len(out) or math.prod(sizes) != out[dim]:
                return None
            out[dim:dim + 1] = sizes
        else:
            dim, sizes = args["dim"], list(args["unflattened_size"])
            if dim >= len(out):
                return None
            known = math.prod(s for s in sizes if s != -1)
            if -1 in sizes:
                if known == 0 or out[dim] % known:
                    return None
                sizes[sizes.index(-1)] = out[dim] // known
            elif known != out[dim]:
                return None
            out[dim:dim + 1] = sizes
    return tuple(out)


def _shown(shape: Shape) -> str:
    return "×".join(str(n) for n in shape)

"""What a layer may be called: a Python identifier that is not already an attribute of the
module it becomes a child of (checked by validate, honoured by the importer and codegen)."""

from __future__ import annotations

import re
from collections.abc import Iterable

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An entry's name is its module's name in state_dict keys: an identifier, or identifiers
# joined by '-' as torchvision's RegNet names its blocks (trunk_output.block1.block1-0).
# Code reaches such a child with getattr(self, "block1-0"), as torch.fx does.
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*")
# An entry may also be one module of an nn.ModuleList, named by its state_dict key path:
# convs.3 (Res2Net's self.convs[3]), fuse_layers.1.0 (HRNet's ModuleList of ModuleLists).
# The entries of one list sharing the first part make that ModuleList, numbered from 0.
ENTRY_NAME = re.compile(MODULE_NAME.pattern + r"(?:\.(?:0|[1-9][0-9]*))*")


def list_place(name: str) -> tuple[str, tuple[int, ...]] | None:
    """Where an entry named by a key path sits: ('convs', (3,)) for convs.3; None for a
    plain name."""
    if not ENTRY_NAME.fullmatch(name) or "." not in name:
        return None
    head, *numbers = name.split(".")
    return head, tuple(int(k) for k in numbers)


def split_source(source: str, names: Iterable[str]) -> tuple[str, str]:
    """The entry a from: names and the output it takes of it: ('halves', '0') for halves.0,
    ('convs.3', '') for the entry convs.3, ('convs.3', '0') for its part 0: the longest
    of ``names`` that the source starts with (else its first part)."""
    known = set(names)
    parts = source.split(".")
    for k in range(len(parts), 0, -1):
        base = ".".join(parts[:k])
        if base in known:
            return base, ".".join(parts[k:])
    base, _, key = source.partition(".")
    return base, key

# Attributes every nn.Module has: a child with one of these names cannot be added
# (PyTorch raises KeyError "attribute ... already exists").  tests/pipeline/test_errors.py
# keeps this list equal to the public names of dir(torch.nn.Sequential()) so it cannot drift; the
# private ones (_modules, _apply, ...) change between torch versions, so every name that
# starts with '_' is refused instead.
MODULE_ATTRIBUTES = frozenset(
    """
T_destination call_super_init dump_patches extra_repr forward training append extend insert pop
add_module apply bfloat16 buffers children compile cpu cuda double eval float get_buffer
get_extra_state get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
named_children named_modules named_parameters parameters register_backward_hook register_buffer
register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule share_memory state_dict to to_empty train type xpu zero_grad
""".split()
)


# What torch.fx.GraphModule adds to nn.Module: a branching list is built as a GraphModule,
# which copies its children onto itself.  tests/pipeline/test_hardening_check.py keeps this equal to
# the public names of dir(GraphModule) beyond nn.Module's.
GRAPH_MODULE_ATTRIBUTES = frozenset(
    """
add_submodule code delete_all_unused_submodules delete_submodule graph meta print_readable
recompile shape_env to_folder
""".split()
)

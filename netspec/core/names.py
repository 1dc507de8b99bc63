"""What a layer may be called: a Python identifier that is not already an attribute of the
module it becomes a child of (checked by validate, honoured by the importer and codegen)."""

from __future__ import annotations

import re

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An entry's name is its module's name in state_dict keys: an identifier, or identifiers
# joined by '-' as torchvision's RegNet names its blocks (trunk_output.block1.block1-0).
# Code reaches such a child with getattr(self, "block1-0"), as torch.fx does.
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*")

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

"""wan-native as a ComfyUI custom-node package from the repository root.

A registry or ComfyUI-Manager install clones the whole repository into custom_nodes/; ComfyUI
then imports this file, which loads the package in python_shim/ (see docs/comfyui.md).
"""

from .python_shim import *  # noqa: F401,F403
from .python_shim import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

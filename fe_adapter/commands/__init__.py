"""The commands of ``fe-adapter``: one module each, listed in ``COMMANDS``.

A command module is light: importing it loads neither torch nor timm, because ``fe-adapter --help`` imports
them all to build the parser. It holds

- ``HELP``: one line, for the list of commands in ``fe-adapter --help``;
- ``EXAMPLE``: one typical command line, shown in the header of ``fe-adapter --help`` and in its own help;
- ``add_arguments(parser)``: its arguments (argparse);
- ``run(args) -> int``: first every check that needs no model (inputs exist, outputs may and can be written,
  config keys), then the heavy imports, inside the function, and the work; it returns the exit status and
  raises ValueError (a bad setting or file), FileNotFoundError, FileExistsError or OutputNotWritable for a one-line
  refusal (exit status 2);
- optionally ``interrupted(args, argv) -> str``: the line printed on Ctrl-C (default "interrupted").

To add a command: write ``fe_adapter/commands/<name>.py`` (a "-" in the name is "_" in the module's) and add its
name to ``COMMANDS``. ``tests/test_cli_startup.py`` then runs its help, its usage errors and its refusals in a
fresh interpreter and fails if one of them imported torch or timm.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The commands, in the order ``fe-adapter --help`` lists them.
COMMANDS = ("train", "eval", "cv", "predict", "crop-faces", "export", "demo", "pretrain-image", "predict-image")


def load(name: str) -> ModuleType:
    """The module of command ``name``."""
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")

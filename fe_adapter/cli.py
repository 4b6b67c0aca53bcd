"""The ``fe-adapter`` command line: argument parsing, and the exit status of a refusal or of Ctrl-C.

The commands live in ``fe_adapter.commands`` (one module each, listed in ``COMMANDS``); this module builds the
parser from them, so ``fe-adapter --help`` lists every command with an example. Parsing loads neither torch nor
timm: help, ``--version`` and usage errors answer at once, and each command makes the checks that need no model
before it imports one.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from fe_adapter import __version__
from fe_adapter._io import OutputNotWritable
from fe_adapter.commands import COMMANDS, load
from fe_adapter.commands._start_up import as_program

DESCRIPTION = "Classify emotions in videos with FE-Adapters on a frozen image ViT."
EPILOG = """overrides are section.key=value (values in YAML); torchrun --nproc_per_node=N -m fe_adapter train ...
runs DistributedDataParallel.

exit status: 0 done; 1 some videos could not be predicted or written (predict; the others were); 2 a bad
argument, setting, file or folder (one line on stderr names it), or outputs that exist without --overwrite;
3 every video was predicted, but in some no window had a face (predict: no overall result); 130 interrupted
(Ctrl-C; the line says how to resume)."""


class _CommandParser(argparse.ArgumentParser):
    """A command's parser that reads ``--window -1s`` as ``--window=-1s``: argparse takes a value that starts
    with "-" for an option and says only "expected one argument"; joined, the option's own check says what is
    wrong with the value."""

    _NEGATIVE = re.compile(r"-\.?\d")  # "-1s", "-0.5", "-.5"

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        if args is not None:
            takes_value = {option for option, action in self._option_string_actions.items() if action.nargs is None}
            joined = []
            for arg in args:
                if joined and joined[-1] in takes_value and self._NEGATIVE.match(arg):
                    joined[-1] = f"{joined[-1]}={arg}"
                else:
                    joined.append(arg)
            args = joined
        return super().parse_known_args(args, namespace)


def parser() -> argparse.ArgumentParser:
    """The parser of every command in ``COMMANDS``; ``args.command`` is the name of the one given."""
    modules = {name: load(name) for name in COMMANDS}
    examples = "\n".join(f"  {module.EXAMPLE}" for module in modules.values())
    top = argparse.ArgumentParser(prog="fe-adapter", description=f"{DESCRIPTION}\n\nexamples:\n{examples}",
                                  epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"fe-adapter {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="command", parser_class=_CommandParser,
                                  title="commands (fe-adapter COMMAND --help for its options)")
    for name, module in modules.items():
        command = commands.add_parser(name, help=module.HELP, description=f"{module.HELP}\n\nexample:\n  "
                                      f"{module.EXAMPLE}", formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
    return top


def _interrupted(command: ModuleType, args: argparse.Namespace, argv: list[str]) -> str:
    """The command's line for Ctrl-C (e.g. how to resume), or "interrupted"."""
    try:
        return command.interrupted(args, argv) if hasattr(command, "interrupted") else "interrupted"
    except (ValueError, OSError):  # its config was changed or removed meanwhile
        return "interrupted"


def console() -> NoReturn:
    """The ``fe-adapter`` program (and ``python -m fe_adapter``): ``main``, then the exit without the interpreter's
    teardown.

    Tearing down torch, timm and matplotlib's modules took 0.8-1.6 s of a command's wall time on a 2-core CPU
    after its work was done (``fe-adapter predict`` on a 60-s video: ~13 s in all). What an exit must still do is
    done, in the interpreter's order: other threads finished (``threading._shutdown``, which also ends idle
    thread-pool workers), the atexit functions run (logging's flush, temporary folders, multiprocessing's
    children), standard output and error flushed. Every file the commands write is closed before ``main``
    returns (``atomic_write``, ``with`` blocks), so no buffered data waits for a finaliser. Under a profiler or a
    tracer (cProfile, coverage: they write their files at the exit), or where those two CPython functions are
    missing, the exit is the normal one.
    """
    as_program()
    code = main()
    shutdown, exit_functions = getattr(threading, "_shutdown", None), getattr(atexit, "_run_exitfuncs", None)
    if sys.getprofile() is not None or sys.gettrace() is not None or shutdown is None or exit_functions is None:
        sys.exit(code)
    shutdown()
    exit_functions()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, a closed stream: nothing more to write
            pass
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = parser()
    try:
        args = top.parse_args(argv)
    except SystemExit as exit_:  # help, --version or a usage error (already printed)
        return exit_.code if isinstance(exit_.code, int) else 2
    command = load(args.command)
    try:
        return command.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, OutputNotWritable) as error:
        print(f"fe-adapter {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"fe-adapter {args.command}: {_interrupted(command, args, argv)}", file=sys.stderr)
        return 130

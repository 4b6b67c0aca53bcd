"""``python -m fe_adapter`` is the ``fe-adapter`` command."""

from fe_adapter.cli import console

console()

"""``python -m fe_adapter`` is the ``fe-adapter`` command."""

from fe_adapter.cli import console

if __name__ == "__main__":  # not when a worker process (multiprocessing's spawn) imports it
    console()

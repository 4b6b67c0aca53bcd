"""``python -m fe_adapter`` is the ``fe-adapter`` command."""

import sys

from fe_adapter.cli import main

sys.exit(main())

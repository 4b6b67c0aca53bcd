"""Training and evaluation of FE-Adapter models: config, trainer, checkpoints, reports, distributed runs.

The names (listed in ``__init__.pyi``) are imported on first use, like ``fe_adapter``'s: the command line
reads a config and checks the run folder without loading torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

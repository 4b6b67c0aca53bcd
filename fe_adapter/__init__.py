"""fe-adapter: adapt image ViTs (facial expression classifiers) to video with FE-Adapters.

Quickstart::

    import fe_adapter
    model = fe_adapter.create_model("vit_base_patch16_224", num_classes=7, num_frames=16,
                                    checkpoint="my_fer_vit.safetensors")
    logits = model(clips)  # clips: (B, T, 3, H, W)
    print(fe_adapter.parameter_report(model))

The public names (listed in ``__init__.pyi``) are imported on first use (PEP 562, scientific-python's
lazy_loader): ``import fe_adapter`` alone loads neither torch nor timm, so the command line answers at once.
"""

import lazy_loader

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

"""Video and image data for facial expression recognition: sources, sampling, transforms, loaders.

Typical use::

    from fe_adapter import data
    clips = data.dfew("/data/DFEW", fold=1, split="train")
    dataset = data.ClipDataset(clips, num_frames=16, train=True,
                               transform=data.train_transform(data.normalization_for(model)))
    for clips, labels, ids in data.make_loader(dataset, batch_size=8):
        ...

Every dataset format, video and image, is registered in ``fe_adapter.data.registry``
(``data.open_dataset("image_folder", root=..., split="test")``). The names (listed in ``__init__.pyi``) are
imported on first use, like ``fe_adapter``'s.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

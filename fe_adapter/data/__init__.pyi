# The public names of fe_adapter.data, for type checkers and for the lazy loader of __init__.py.
from .batch_augment import (
    BatchAugment as BatchAugment,
    prepare_transform as prepare_transform,
)
from .dataset import (
    ClipDataset as ClipDataset,
    ClipSample as ClipSample,
)
from .images import (
    AFFECTNET_CLASSES as AFFECTNET_CLASSES,
    FER2013_CLASSES as FER2013_CLASSES,
    RAFDB_CLASSES as RAFDB_CLASSES,
    ImageItem as ImageItem,
    ImageList as ImageList,
    UnreadableImage as UnreadableImage,
    affectnet as affectnet,
    fer2013 as fer2013,
    image_folder as image_folder,
    image_list as image_list,
    load_image as load_image,
    rafdb as rafdb,
)
from .loader import (
    ClipBatch as ClipBatch,
    SkipReport as SkipReport,
    collate_clips as collate_clips,
    default_num_workers as default_num_workers,
    make_loader as make_loader,
)
from .readers import (
    UnreadableClip as UnreadableClip,
    read_frames as read_frames,
)
from .registry import (
    FORMATS as FORMATS,
    DatasetFormat as DatasetFormat,
    open_dataset as open_dataset,
)
from .sampling import (
    SAMPLINGS as SAMPLINGS,
    sample_indices as sample_indices,
)
from .sources import (
    DFEW_CLASSES as DFEW_CLASSES,
    FERV39K_CLASSES as FERV39K_CLASSES,
    MAFW_CLASSES as MAFW_CLASSES,
    ClipItem as ClipItem,
    ClipList as ClipList,
    DatasetError as DatasetError,
    dfew as dfew,
    ferv39k as ferv39k,
    folder_tree as folder_tree,
    list_file as list_file,
    mafw as mafw,
)
from .synthetic import (
    FRAME_CLASSES as FRAME_CLASSES,
    ORDER_ONLY_PAIRS as ORDER_ONLY_PAIRS,
    SYNTHETIC_CLASSES as SYNTHETIC_CLASSES,
    SyntheticClips as SyntheticClips,
    SyntheticFaces as SyntheticFaces,
    render_clip as render_clip,
)
from .transforms import (
    Normalization as Normalization,
    eval_transform as eval_transform,
    normalization_for as normalization_for,
    train_transform as train_transform,
)

# The public names of fe_adapter.faces, for type checkers and for the lazy loader of __init__.py.
from .align import (
    MARGIN as MARGIN,
    align_face as align_face,
    face_template as face_template,
)
from .detectors import (
    DETECTORS as DETECTORS,
    Detector as Detector,
    Refiner as Refiner,
    make_detector as make_detector,
)
from .face import (
    LANDMARK_NAMES as LANDMARK_NAMES,
    Face as Face,
)
from .tracking import (
    FaceTracker as FaceTracker,
    TrackedFace as TrackedFace,
    TrackStats as TrackStats,
)

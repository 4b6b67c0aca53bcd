"""Make docs/images/timeline_example.png: the demo's model predicting on a real-face video.

    make demo                                   # trains runs/demo (about a minute on a 2-core CPU)
    python scripts/timeline_example.py          # writes docs/images/timeline_example.png

The demo's model was trained on synthetic faces, so its guesses about a photo of a real person show the
pipeline (face tracking, windows, probabilities over time), not a trained emotion recogniser.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fe_adapter.predict.examples import face_video
from fe_adapter.predict.predictor import Predictor
from fe_adapter.predict.timeline import write_prediction

ROOT = Path(__file__).resolve().parent.parent


def main(run: Path = ROOT / "runs" / "demo") -> Path:
    predictor = Predictor.from_checkpoint(run / "fe_adapter" / "best.safetensors",
                                          backbone_checkpoint=run / "image_model" / "last.safetensors")
    with tempfile.TemporaryDirectory() as folder:
        video = face_video(Path(folder) / "astronaut.mp4")
        prediction = predictor.predict_video(video, window=1.0, stride=0.25)
        paths = write_prediction(prediction, folder)
        target = ROOT / "docs" / "images" / "timeline_example.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(paths["png"], target)
    print(f"{prediction.top} overall; {len(prediction.windows)} windows at {prediction.processing_fps:.1f} frames/s; "
          f"wrote {target}")
    return target


if __name__ == "__main__":
    main()

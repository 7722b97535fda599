"""Scores of FakeLens exports in a standard client, run as its own process by tests/test_clients.py.

    python tests/client_scores.py {mediapipe|task_library} REQUEST.json

REQUEST.json: {"models": [{"path": "m.tflite", "images": "x.npy"}, ...]}, each .npy a uint8 array
(N, S, S, 3) already at the model's input size, so the client only applies the metadata's
normalisation. Prints {"m.tflite": [{"scores": {category: score}, "top": category}, ...]} on
stdout: every category the client reports, by name, and the one it ranks first.

Imports only numpy and the client: MediaPipe runs in its own venv (it needs numpy 2), and the
Task Library must not import TensorFlow (its metadata module would, and clash with the one
FakeLens' venv has), so it is hidden before tflite_support is imported.
"""
from __future__ import annotations

import json
import sys


def _results(categories) -> dict:
    ranked = list(categories)
    return {"scores": {c.category_name: float(c.score) for c in ranked}, "top": ranked[0].category_name}


def mediapipe_scores(path: str, images) -> list[dict]:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=path), max_results=-1,
                                            score_threshold=0.0)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        return [_results(classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=img))
                         .classifications[0].categories) for img in images]


def task_library_scores(path: str, images) -> list[dict]:
    sys.modules["tensorflow"] = None  # tflite_support.metadata imports it when present
    from tflite_support.task import core, processor, vision
    options = vision.ImageClassifierOptions(
        base_options=core.BaseOptions(file_name=path),
        classification_options=processor.ClassificationOptions(max_results=-1, score_threshold=0.0))
    classifier = vision.ImageClassifier.create_from_options(options)
    return [_results(classifier.classify(vision.TensorImage.create_from_array(img)).classifications[0].categories)
            for img in images]


CLIENTS = {"mediapipe": mediapipe_scores, "task_library": task_library_scores}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in CLIENTS:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    import numpy as np
    with open(argv[2], encoding="utf-8") as f:
        request = json.load(f)
    client = CLIENTS[argv[1]]
    out = {m["path"]: client(m["path"], np.ascontiguousarray(np.load(m["images"]))) for m in request["models"]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

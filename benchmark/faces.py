"""Finding the faces in a photo, so that each is judged on its own, cropped like a training face.

FakeLens was trained on portraits in which one face fills most of the frame; a group photo, a
wide shot or a face off to one side looks like none of them. `find_faces` locates faces with
MTCNN (the `mtcnn` package: TensorFlow, its weights inside the wheel, nothing downloaded at run
time) and `face_crop` cuts the square around each one that a training image would show.
mtcnn (and so TensorFlow) is imported on first use only, so `--help` stays fast.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

FACE_MARGIN = 1.4
"""Side of the square crop around a face, as a multiple of the longer side of MTCNN's box (which
runs from the eyebrows to the chin and is about 0.75 as wide as tall). `python -m benchmark.faces
--data ../shared/data` measures, on 40 training images per source, the multiple that crops the
largest face back to the whole image: median 1.31 for CIPLAB, 1.23 for LFW's centre crops, 1.39
for FFHQ's aligned crops, 1.36 for the (FFHQ-like) GAN faces, 1.41 for SD 2.1 faces, 2.33 for the
webmorph studio shots; 1.36 over all 240. So a 1.4× crop shows what most training images show:
the face with some hair, the ears and the chin. The box centre sits within 0.08 box heights of
the image centre in every source, so the crop is centred on the box."""

MIN_CONFIDENCE = 0.9
"""Detections MTCNN is less sure of are not faces for FakeLens. The extra detections below 0.9 on
those training images were false (looked at: a tattoo, a hat brim, an earring, hair); above it
the survey finds the face in 236 of the 240 portraits (the others are judged as whole images,
which for a portrait is nearly the same crop). False faces matter: a photo's verdict is its most
fake face's."""

MIN_FACE_PX = 40
"""Faces whose box is smaller than this (longer side, original pixels) are not reported: the
confident detections under 30 px on the training images were faces far in the background, and
the model cannot judge so few pixels (a 40 px face is a 56 px crop, enlarged 4× for 224)."""

DETECT_SIDE = 1024
"""Photos are searched for faces at most this large (longer side; boxes are mapped back to the
original pixels): MTCNN's image pyramid takes about 0.6 s at 1024² on a 2-core machine and grows
with the pixel count, and the faces a downscaled 12-megapixel photo loses are below MIN_FACE_PX."""


@dataclass(frozen=True)
class FaceBox:
    """A face found in a photo: x, y (top left), w, h in the photo's pixels (EXIF rotation
    applied, as every stage sees it) and MTCNN's confidence 0..1."""

    x: int
    y: int
    w: int
    h: int
    confidence: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h


_detector = None
_lock = threading.Lock()  # one MTCNN for the process; TensorFlow parallelises each search itself


def find_faces(img: Image.Image) -> list[FaceBox]:
    """The faces in an RGB photo, left to right (then top to bottom); [] when there are none."""
    global _detector
    scale = min(1.0, DETECT_SIDE / max(img.size))
    small = img if scale == 1.0 else img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                                                Image.BILINEAR)
    with _lock:
        if _detector is None:
            from ela import tf_env  # noqa: F401  (mtcnn loads TensorFlow: FakeLens' defaults, without start-up noise)
            try:
                from mtcnn import MTCNN
            except ImportError as err:
                raise RuntimeError(f"finding faces needs the mtcnn package ({err}) — `make setup` installs it, "
                                   f"or: pip install mtcnn==1.0.0") from None
            _detector = MTCNN()
        found = _detector.detect_faces(np.asarray(small, dtype=np.uint8))
    faces = []
    for face in found:
        x, y, w, h = (int(round(v / scale)) for v in face["box"])
        x, y = max(0, x), max(0, y)
        w, h = min(w, img.width - x), min(h, img.height - y)
        if face["confidence"] >= MIN_CONFIDENCE and max(w, h) >= MIN_FACE_PX:
            faces.append(FaceBox(x, y, w, h, round(float(face["confidence"]), 4)))
    return sorted(faces, key=lambda f: (f.x, f.y))


def crop_square(face: FaceBox, width: int, height: int, margin: float = FACE_MARGIN) -> tuple[int, int, int]:
    """(left, top, side) of the square of side margin × the box's longer side centred on the face,
    moved inside the width × height photo where it would cross an edge and no larger than the
    photo, so that no padding is invented."""
    side = min(int(round(margin * max(face.w, face.h))), width, height)
    left = min(max(int(round(face.x + face.w / 2 - side / 2)), 0), width - side)
    top = min(max(int(round(face.y + face.h / 2 - side / 2)), 0), height - side)
    return left, top, side


def face_crop(img: Image.Image, face: FaceBox, margin: float = FACE_MARGIN) -> Image.Image:
    """The face as a training image would show it (see crop_square)."""
    left, top, side = crop_square(face, img.width, img.height, margin)
    return img.crop((left, top, left + side, top + side))


def survey(records, per_source: int) -> list[dict]:
    """How the training images frame their faces: per source, on `per_source` train images, the
    median of (shorter image side / longer side of the largest face's box) — the margin that
    would crop that face back to the whole image — and of the box centre's vertical offset from
    the image centre (in box heights). The numbers behind FACE_MARGIN."""
    from ela import ImageError, read_image
    from train.data import select

    rows, every = [], []
    chosen = select(records, splits=["train"], max_per_source=per_source)
    for source in sorted({r.source for r in chosen}):
        margins, offsets, extra, missed = [], [], 0, 0
        for record in (r for r in chosen if r.source == source):
            try:
                img, _ = read_image(record.path)
            except ImageError:
                continue
            faces = find_faces(img)
            if not faces:
                missed += 1
                continue
            face = max(faces, key=lambda f: f.w * f.h)
            margins.append(min(img.size) / max(face.w, face.h))
            offsets.append((face.y + face.h / 2 - img.height / 2) / face.h)
            extra += len(faces) - 1
        every += margins
        rows.append({"source": source, "images": len(margins) + missed, "no_face": missed, "extra_faces": extra,
                     "margin_median": float(np.median(margins)) if margins else None,
                     "centre_offset_median": float(np.median(offsets)) if offsets else None})
    rows.append({"source": "all", "images": sum(r["images"] for r in rows), "no_face": sum(r["no_face"] for r in rows),
                 "extra_faces": sum(r["extra_faces"] for r in rows),
                 "margin_median": float(np.median(every)) if every else None, "centre_offset_median": None})
    return rows


def main(argv):
    """`python -m benchmark.faces --data ../shared/data`: the survey behind FACE_MARGIN, as a table."""
    from absl import flags

    from train.cli import run_main
    from train.data import load_records

    FLAGS = flags.FLAGS

    def job():
        rows = survey(load_records(FLAGS.data), FLAGS.per_source)
        fmt = lambda v, spec: "–" if v is None else format(v, spec)  # noqa: E731
        print(f"How training images frame their faces (largest face per image; margin = shorter image side / "
              f"longer box side; FACE_MARGIN = {FACE_MARGIN})\n\n| source | images | no face | extra faces "
              f"| margin (median) | centre offset, box heights (median) |\n|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['source']} | {r['images']} | {r['no_face']} | {r['extra_faces']} "
                  f"| {fmt(r['margin_median'], '.2f')} | {fmt(r['centre_offset_median'], '+.3f')} |")

    return run_main(job)


if __name__ == "__main__":
    from absl import flags

    from train.cli import main_entry
    flags.DEFINE_string("data", "../shared/data", "Dataset: a folder with MANIFEST.csv, or a manifest CSV.")
    flags.DEFINE_integer("per_source", 40, "Train images per source.", lower_bound=1)
    main_entry(main)

"""Faces first (`--faces`, `Detector.predict(path, faces=True)`): MTCNN finds the faces where they
are, each is cropped like a training face and judged; a photo without a face is judged whole."""
import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli

ONE = "gan_faces/boredhumans_10.jpg"  # a training face, 512 px
OTHER = "real_ffhq/00027.jpg"  # another one, 256 px
TILE = 256
PASTED = ((40, 72), (600, 72))  # where the two faces go on a 900x400 canvas


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def crop_box(face, size) -> tuple:
    from benchmark.faces import crop_square
    left, top, side = crop_square(face, *size)
    return left, top, side, side


@pytest.fixture(scope="module")
def face_photos(tmp_path_factory, shared_data):
    """one.jpg: a training face as it is; two.jpg: two training faces side by side on a grey
    canvas; none.png: a plain gradient; broken.jpg: not an image."""
    folder = tmp_path_factory.mktemp("faces")
    (folder / "one.jpg").write_bytes((shared_data / ONE).read_bytes())
    canvas = Image.new("RGB", (900, 400), (128, 128, 128))
    for name, at in zip((ONE, OTHER), PASTED):
        canvas.paste(Image.open(shared_data / name).convert("RGB").resize((TILE, TILE), Image.BILINEAR), at)
    canvas.save(folder / "two.jpg", quality=92)
    ramp = np.linspace(0, 255, 300).astype(np.uint8)
    Image.fromarray(np.stack([np.tile(ramp, (200, 1))] * 3, axis=-1)).save(folder / "none.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


def test_faces_are_found_where_they_are_and_cropped_like_training_faces(face_photos):
    from benchmark.faces import find_faces
    one = Image.open(face_photos / "one.jpg").convert("RGB")
    [face] = find_faces(one)
    assert face.confidence >= 0.9 and one.width * 0.25 < face.w < one.width * 0.9
    # FACE_MARGIN makes the crop of a training face nearly the training image itself
    assert iou(crop_box(face, one.size), (0, 0, *one.size)) > 0.75

    two = Image.open(face_photos / "two.jpg")
    faces = find_faces(two)
    assert len(faces) == 2
    for face, (x, y) in zip(faces, PASTED):  # left to right, each inside its tile
        assert x < face.x + face.w / 2 < x + TILE and y < face.y + face.h / 2 < y + TILE
        assert iou(crop_box(face, two.size), (x, y, TILE, TILE)) > 0.75

    assert find_faces(Image.open(face_photos / "none.png").convert("RGB")) == []
    assert find_faces(Image.new("RGB", (3, 1))) == []  # too small to search: no face, no error


def test_crop_square_stays_inside_the_photo():
    from benchmark.faces import FACE_MARGIN, FaceBox, crop_square
    middle = FaceBox(400, 300, 75, 100, 0.99)
    left, top, side = crop_square(middle, 1000, 800)
    assert side == round(FACE_MARGIN * 100) and (left + side / 2, top + side / 2) == pytest.approx((437.5, 350), abs=1)
    assert crop_square(FaceBox(0, 0, 75, 100, 0.99), 1000, 800)[:2] == (0, 0)  # pushed in, not padded
    assert crop_square(FaceBox(950, 720, 50, 80, 0.99), 1000, 800) == (1000 - 112, 800 - 112, 112)
    assert crop_square(FaceBox(10, 0, 180, 190, 0.99), 200, 190) == (5, 0, 190)  # never larger than the photo


def test_the_api_judges_each_face_and_else_the_whole_image(tiny_export, face_photos):
    from benchmark import Detector
    from benchmark.detector import Face
    from benchmark.faces import face_crop, find_faces
    from ela import read_image
    detector = Detector(tiny_export["float32"]["path"], threads=2)

    two = detector.predict(face_photos / "two.jpg", faces=True)
    assert two.error is None and two.scored == "faces" and len(two.faces) == 2
    assert all(isinstance(f, Face) and f.label == ("fake" if f.p_fake >= two.threshold else "real") for f in two.faces)
    img, sha = read_image(face_photos / "two.jpg")
    expected = [detector.scores([detector.prep.apply(face_crop(img, f), sha)])[0] for f in find_faces(img)]
    assert [f.p_fake for f in two.faces] == pytest.approx(expected, abs=1e-7)
    assert [f.box for f in two.faces] == [f.box for f in find_faces(img)]
    assert two.p_fake == max(expected) and two.label == max(two.faces, key=lambda f: f.p_fake).label

    none = detector.predict(face_photos / "none.png", faces=True)
    assert none.faces == () and none.scored == "whole image"
    assert none.p_fake == detector.predict(face_photos / "none.png").p_fake  # the whole photo, as without faces
    bad = detector.predict(face_photos / "broken.jpg", faces=True)
    assert bad.p_fake is None and bad.faces == () and "not an image Pillow can read" in bad.error

    many = list(detector.predict_many([face_photos / n for n in ("two.jpg", "broken.jpg", "one.jpg")], faces=True))
    assert [len(v.faces) for v in many] == [2, 0, 1] and many[0] == two

    import dataclasses
    from benchmark.invariance import PROBES
    threshold = (min(expected) + max(expected)) / 2  # between the two faces: the photo is fake through one of them
    detector.info = dataclasses.replace(detector.info, threshold=threshold)
    probed = detector.predict(face_photos / "two.jpg", faces=True, probes=True)
    photo_fake = {name: max(detector.scores([detector.prep.apply(change(face_crop(img, f)), sha)])[0]
                            for f in find_faces(img)) >= threshold for name, change in PROBES.items()}
    assert probed.label == "fake" and [f.p_fake for f in probed.faces] == pytest.approx(expected, abs=1e-7)
    assert probed.unsteady == tuple(name for name, fake in photo_fake.items() if not fake)  # judged on its faces


def test_predict_command_faces_json_csv_and_contact_sheet(tiny_export, face_photos, tmp_path):
    model = tiny_export["float32"]["path"]
    sheet = tmp_path / "out" / "sheet.html"
    proc = run_cli("benchmark.predict", "--model", model, str(face_photos), "--faces", "--format", "json",
                   "--html", str(sheet))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"broken.jpg", "none.png", "one.jpg", "two.jpg"}
    assert [len(rows[n]["faces"]) for n in ("broken.jpg", "none.png", "one.jpg", "two.jpg")] == [0, 0, 1, 2]
    assert rows["none.png"]["scored"] == "whole image" and rows["two.jpg"]["scored"] == "faces"
    assert rows["broken.jpg"]["scored"] is None and "not an image Pillow can read" in rows["broken.jpg"]["error"]
    for face in rows["two.jpg"]["faces"]:
        assert set(face) == {"box", "confidence", "p_fake", "label"} and len(face["box"]) == 4
    assert rows["two.jpg"]["p_fake"] == max(f["p_fake"] for f in rows["two.jpg"]["faces"])
    assert [f["box"][0] < 450 for f in rows["two.jpg"]["faces"]] == [True, False]

    text = sheet.read_text()
    assert text.count('class="face ') == 3 and "no face found: whole image scored" in text
    assert sorted(p.name for p in sheet.parent.iterdir()) == ["sheet.html"]  # written atomically, nothing left over

    table = run_cli("benchmark.predict", "--model", model, str(face_photos / "two.jpg"), "--faces")
    assert table.returncode == 0 and table.stdout.count("    face at ") == 2 and "2 face(s) judged" in table.stdout
    out = run_cli("benchmark.predict", "--model", model, str(face_photos / "none.png"), "--faces", "--format", "csv")
    [row] = list(csv.DictReader(io.StringIO(out.stdout)))
    assert row["scored"] == "whole image" and json.loads(row["faces"]) == []
    folder = run_cli("benchmark.predict", "--model", model, str(face_photos / "one.jpg"), "--html", str(tmp_path))
    assert folder.returncode == 2 and "is a folder" in folder.stderr

"""Golden vectors for the Kotlin core's JVM tests, made with the project's own Python.

    python android_demo/core/make_golden.py OUT_DIR

Writes into OUT_DIR (created if needed; nothing outside it is touched):

  manifest.json        what every file below is and what the Kotlin side must get from it
  img/*.rgb            deterministic synthetic images (raw interleaved RGB, or RGBA for the alpha case)
  jpeg/*.jpg           Pillow's JPEG encoding of each image at each quality
  roundtrip/*.rgb      every Pillow JPEG round trip (ela.jpeg_roundtrip) made while computing the
                       goldens, keyed in the manifest by the sha256 of the input pixels + quality, so
                       the Kotlin tests can replay Pillow's codec and check the ELA / preprocessing
                       arithmetic bit for bit
  ela/*.rgb            ela.error_level at several qualities, "auto" and numeric scales
  resize/*.rgb         Pillow bilinear resizes (the resampler Preprocessing uses)
  pre/*.rgb            ela.Preprocessing.apply for several configurations (the model input)
  meta/*               sample fakelens.json files and fake .tflite files with an appended zip
  to_rgb/*.rgb         ela.to_rgb of RGBA images (alpha composited on white)
  orientation/*.rgb    ela.to_rgb of an image carrying each EXIF orientation 1..8

Everything is computed here from formulas and a seeded generator: no file is read from elsewhere.
Output tensors and their expected probabilities / labels are in manifest["outputs"].
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

import ela.preprocess as ela_preprocess
import ela.transform as ela_transform
from ela import ElaParams, FormatControl, Preprocessing, error_level, to_rgb

QUALITIES = (75, 90, 95)
SCALES = ("auto", 10.0, 2.5)


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Golden:
    def __init__(self, out: Path):
        self.out = out
        self.manifest: dict = {"schema": 1, "images": [], "jpeg": [], "roundtrips": [], "ela": [],
                               "resize": [], "preprocessing": [], "metadata": [], "outputs": [],
                               "to_rgb": [], "orientation": []}
        self._seen_roundtrips: set[str] = set()

    def write(self, rel: str, data: bytes) -> str:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return rel

    # --- recording Pillow's JPEG round trips -------------------------------------------------
    def install_recorder(self):
        original = ela_transform.jpeg_roundtrip

        def recording_roundtrip(img: Image.Image, quality: int) -> Image.Image:
            out = original(img, quality)
            src = np.asarray(img.convert("RGB"), dtype=np.uint8).tobytes()
            key = f"{_sha(src)}_q{quality}"
            if key not in self._seen_roundtrips:
                self._seen_roundtrips.add(key)
                rel = self.write(f"roundtrip/{key}.rgb", np.asarray(out, dtype=np.uint8).tobytes())
                self.manifest["roundtrips"].append({"input_sha256": _sha(src), "quality": quality,
                                                    "width": img.width, "height": img.height, "file": rel})
            return out

        # error_level looks the name up in ela.transform; Preprocessing imported it by name.
        ela_transform.jpeg_roundtrip = recording_roundtrip
        ela_preprocess.jpeg_roundtrip = recording_roundtrip


def synthetic_images() -> dict[str, np.ndarray]:
    """Deterministic test pictures: odd sizes (partial JPEG MCUs), smooth and busy regions."""
    rng = np.random.default_rng(20240611)
    imgs: dict[str, np.ndarray] = {}

    h, w = 45, 67
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1)
    noise = rng.integers(-20, 21, size=(h, w, 3))
    imgs["gradient_noise"] = np.clip(base + noise, 0, 255).astype(np.uint8)

    h, w = 96, 128
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.int32)
    img[..., 0] = 40 + 30 * np.sin(x / 7.0)
    img[..., 1] = 90 + 25 * np.cos(y / 5.0)
    img[..., 2] = 160
    disc = (x - 80) ** 2 + (y - 40) ** 2 < 22 ** 2
    img[disc] = (230, 200, 40)
    img[60:85, 10:50] = (20, 20, 200)
    img[::9, :, :] = 250  # thin stripes: strong high frequencies
    imgs["shapes"] = np.clip(img, 0, 255).astype(np.uint8)

    h, w = 200, 300
    y, x = np.mgrid[0:h, 0:w]
    face = np.stack([128 + 100 * np.sin(x / 23.0) * np.cos(y / 31.0),
                     128 + 90 * np.sin((x + y) / 17.0),
                     128 + 80 * np.cos(x / 11.0 - y / 13.0)], -1)
    face += rng.normal(0, 6, size=face.shape)
    imgs["large"] = np.clip(np.rint(face), 0, 255).astype(np.uint8)

    imgs["flat"] = np.full((16, 16, 3), 128, np.uint8)  # re-save is lossless: ELA "auto" peak 0
    return imgs


def rgba_image() -> np.ndarray:
    h, w = 20, 24
    y, x = np.mgrid[0:h, 0:w]
    rgba = np.stack([x * 10 % 256, y * 12 % 256, (x * y) % 256, (x * 11 + y * 5) % 256], -1)
    rgba[0, 0, 3] = 0
    rgba[0, 1, 3] = 255
    return rgba.astype(np.uint8)


def alpha_all_image() -> np.ndarray:
    """Every (colour value, alpha) pair once: x is the value, y the alpha."""
    y, x = np.mgrid[0:256, 0:256]
    return np.stack([x, 255 - x, (x * 7 + y) % 256, y], -1).astype(np.uint8)


def scale_tag(scale) -> str:
    return "auto" if scale == "auto" else f"s{str(scale).replace('.', 'p')}"


def fake_tflite(g: Golden, name: str, meta: dict, compression: int) -> str:
    """A stand-in .tflite: flatbuffer-like bytes with a zip appended in place, the way the
    metadata populator stores associated files (zipfile append mode: absolute offsets)."""
    path = g.out / "meta" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 3
    path.write_bytes(body)
    with zipfile.ZipFile(path, "a", compression=compression) as z:
        z.writestr("labels.txt", "real\nfake\n")
        z.writestr("fakelens.json", json.dumps(meta, indent=2))
    return f"meta/{name}"


def as_schema_1(doc: dict) -> dict:
    """A schema-2 fakelens.json as FakeLens wrote it before: the run and protocol in `extra`, the
    trained-on sources only as the "source/split" keys of `extra.data_counts`."""
    old = {k: v for k, v in doc.items() if k not in ("run", "protocol", "train_sources")}
    counts = {f"{s}/{split}": 10 for s in reversed(doc["train_sources"]) for split in ("train", "val")}
    return dict(old, schema_version=1, extra={"run": doc["run"], "protocol": doc["protocol"], "data_counts": counts})


def metadata_documents() -> list[tuple[str, dict, dict]]:
    """(file name, fakelens.json, what a reader gets from it): schema-2 documents as convert.metadata
    writes them, and schema-1 ones, whose run, protocol and sources the reader takes from `extra`.
    tests/test_convert.py checks the Python reader against the same expectations."""
    def meta(name, variant, ela, ela_in_graph=False, fc=None, threshold=0.5, size=224, labels=("real", "fake"),
             sources=("gan_faces", "real_ffhq"), **more):
        pre = Preprocessing(input_size=size, ela=ela, format_control=fc).to_dict()
        return {"schema_version": 2, "model_name": name, "config": name.split("_")[1], "run": name.split("_")[1],
                "protocol": "as_is", "train_sources": list(sources), "variant": variant,
                "labels": list(labels), "threshold": threshold, "ela_in_graph": ela_in_graph, "preprocessing": pre,
                **more}

    cases = [
        ("gan_int8.json", meta("fakelens_gan_int8", "int8", ElaParams(90, "auto", "full"))),
        ("ela_float.json", meta("fakelens_ela_float32", "float32", ElaParams(75, 12.5, "resized"), threshold=0.35)),
        ("rgb_int8.json", meta("fakelens_rgb_int8", "int8", None, size=96, labels=("real", "fake"))),
        ("graph_fc.json", meta("fakelens_graph_float16", "float16", ElaParams(95, 20.0, "resized"), ela_in_graph=True,
                               fc=FormatControl(70, 95), threshold=0.7, size=128)),
        # `convert --bake_threshold`: the threshold folded into the scores, the metadata's at 0.5
        ("baked_int8.json", meta("fakelens_baked_int8", "int8", ElaParams(90, "auto", "full"), baked_threshold=0.62)),
        ("controlled_int8.json", meta("fakelens_gan_int8", "int8", None, sources=("gan_faces", "real_lfw", "sd21_faces"),
                                      protocol="controlled", run="gan_controlled")),
        # `convert --threshold_target`: the band of uncertain verdicts around the threshold chosen with it
        ("banded_float.json", meta("fakelens_fakelens_float32", "float32", None, threshold=0.79,
                                   uncertain_band=[0.4, 0.95])),
    ]
    docs = [(fname, m, m) for fname, m in cases]
    docs += [(f"v1_{fname}", as_schema_1(m), dict(m, schema_version=1)) for fname, m in cases]
    bare = {k: v for k, v in as_schema_1(cases[0][1]).items() if k != "extra"}  # schema 1 without extra
    docs.append(("v1_no_extra.json", bare, dict(bare, run="", protocol="", train_sources=[])))
    return docs


def metadata_cases(g: Golden):
    docs = metadata_documents()
    for fname, doc, expected in docs:
        rel = g.write(f"meta/{fname}", json.dumps(doc, indent=2).encode())
        g.manifest["metadata"].append({"file": rel, "expected": expected})
    # the same document written compactly and with unicode / escapes, and tflite containers
    first, old = docs[0][1], next(doc for fname, doc, _ in docs if fname.startswith("v1_"))
    odd = dict(first, model_name="caf\u00e9 \"quoted\"\\path\u263a", threshold=5e-1)
    rel = g.write("meta/escapes.json", json.dumps(odd, ensure_ascii=True, separators=(",", ":")).encode())
    g.manifest["metadata"].append({"file": rel, "expected": odd})
    for fname, doc, comp in (("stored.tflite", first, zipfile.ZIP_STORED), ("deflated.tflite", first, zipfile.ZIP_DEFLATED),
                             ("v1_stored.tflite", old, zipfile.ZIP_STORED)):
        rel = fake_tflite(g, fname, doc, comp)
        expected = next(e for _, d, e in docs if d is doc)
        g.manifest["metadata"].append({"file": rel, "expected": expected, "container": "tflite"})


def real_export_case(g: Golden):
    """A real .tflite written by the project's own metadata writer (convert.metadata, i.e.
    tflite-support's populator) around a tiny Keras model. Needs TensorFlow; skipped without it."""
    try:
        import os
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf
        from convert.metadata import ModelInfo, read_model_info, write_metadata
    except Exception as err:  # a Python without the training stack: the Kotlin test is skipped
        print(f"golden: no real .tflite export ({err.__class__.__name__}: {err})")
        return
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((32, 32, 3))
    x = tf.keras.layers.GlobalAveragePooling2D()(inp)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(2, activation="softmax")(x))
    flat = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    info = ModelInfo(name="fakelens_tiny_float32", config="gan", variant="float32", threshold=0.42,
                     uncertain_band=(0.3, 0.6),
                     run="tiny", protocol="controlled", train_sources=("gan_faces", "real_lfw"),
                     preprocessing=Preprocessing(32, ElaParams(85, 7.5, "resized")), extra={"note": "golden"})
    data = write_metadata(flat, info)
    assert read_model_info(data) == info
    rel = g.write("meta/real_export.tflite", data)
    g.manifest["metadata"].append({"file": rel, "expected": info.to_json(), "container": "tflite", "real": True})


def output_cases(g: Golden):
    def decide(p_fake, threshold, labels=("real", "fake")):
        return labels[1] if p_fake >= threshold else labels[0]

    out = []
    for probs, thr in (([0.9, 0.1], 0.5), ([0.2, 0.8], 0.5), ([0.5, 0.5], 0.5), ([0.62, 0.38], 0.35),
                       ([0.31, 0.69], 0.7)):
        p = np.asarray(probs, np.float32)
        out.append({"kind": "float32", "values": [float(v) for v in p], "threshold": thr,
                    "p_real": float(p[0]), "p_fake": float(p[1]), "label": decide(float(p[1]), thr)})
    # uint8 / int8 softmax outputs as the TFLite converter quantises them (scale 1/256)
    for q, zp, dtype, thr in (([200, 56], 0, "uint8", 0.5), ([128, 128], 0, "uint8", 0.5),
                              ([0, 255], 0, "uint8", 0.5), ([-28, -72], -128, "int8", 0.35),
                              ([-128, 127], -128, "int8", 0.5)):
        scale = 1.0 / 256.0
        deq = [(v - zp) * scale for v in q]
        out.append({"kind": dtype, "values": q, "scale": scale, "zero_point": zp, "threshold": thr,
                    "p_real": deq[0], "p_fake": deq[1], "label": decide(deq[1], thr)})
    for logits in ([2.0, -1.0], [-3.5, 4.25], [1000.0, 1001.0]):
        z = np.asarray(logits, np.float64)
        e = np.exp(z - z.max())
        sm = e / e.sum()
        out.append({"kind": "logits", "values": logits, "threshold": 0.5, "p_real": float(sm[0]),
                    "p_fake": float(sm[1]), "label": decide(float(sm[1]), 0.5)})
    g.manifest["outputs"] = out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    g = Golden(out)
    g.install_recorder()
    imgs = synthetic_images()

    for name, arr in imgs.items():
        h, w, _ = arr.shape
        rel = g.write(f"img/{name}.rgb", arr.tobytes())
        g.manifest["images"].append({"name": name, "width": w, "height": h, "file": rel, "sha256": _sha(arr.tobytes())})
        img = Image.fromarray(arr, "RGB")
        for q in QUALITIES:
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=q)  # exactly what ela.jpeg_roundtrip does
            jrel = g.write(f"jpeg/{name}_q{q}.jpg", buf.getvalue())
            resaved = ela_transform.jpeg_roundtrip(img, q)  # recorded
            with Image.open(io.BytesIO(buf.getvalue())) as check:
                assert np.array_equal(np.asarray(check.convert("RGB")), np.asarray(resaved))
            g.manifest["jpeg"].append({"image": name, "quality": q, "file": jrel,
                                       "decoded_sha256": _sha(np.asarray(resaved).tobytes())})
            for scale in SCALES:
                e = error_level(img, ElaParams(q, scale, "full"))
                erel = g.write(f"ela/{name}_q{q}_{scale_tag(scale)}.rgb", e.tobytes())
                g.manifest["ela"].append({"image": name, "quality": q, "scale": scale, "file": erel,
                                          "peak": int(np.abs(arr.astype(int) - np.asarray(resaved, int)).max())})

    for name in ("gradient_noise", "large", "shapes"):
        img = Image.fromarray(imgs[name], "RGB")
        for w, h in ((224, 224), (64, 64), (33, 50), (imgs[name].shape[1], imgs[name].shape[0])):
            r = np.asarray(img.resize((w, h), ela_preprocess.RESAMPLE), np.uint8)
            rel = g.write(f"resize/{name}_{w}x{h}.rgb", r.tobytes())
            g.manifest["resize"].append({"image": name, "width": w, "height": h, "file": rel})

    configs = {
        "rgb": Preprocessing(64),
        "ela_full_auto": Preprocessing(64, ElaParams(90, "auto", "full")),
        "ela_resized_auto": Preprocessing(64, ElaParams(90, "auto", "resized")),
        "ela_full_fixed": Preprocessing(48, ElaParams(75, 12.5, "full")),
        "ela_resized_fixed": Preprocessing(96, ElaParams(95, 20.0, "resized")),
        "fc_ela": Preprocessing(64, ElaParams(90, "auto", "full"), FormatControl(70, 95)),
        "fc_rgb": Preprocessing(64, None, FormatControl(70, 95)),
    }
    for name in ("gradient_noise", "large"):
        img = Image.fromarray(imgs[name], "RGB")
        for cname, pre in configs.items():
            sha = _sha(f"{name}-file-bytes".encode()) if pre.format_control else ""
            x = pre.apply(img, sha)
            rel = g.write(f"pre/{name}_{cname}.rgb", np.asarray(x, np.uint8).tobytes())
            g.manifest["preprocessing"].append({"image": name, "config": cname, "preprocessing": pre.to_dict(),
                                                "sha256": sha, "file": rel,
                                                "fc_quality": pre.format_control.quality_for(sha) if sha else None})

    for name, rgba in (("alpha", rgba_image()), ("alpha_all", alpha_all_image())):
        rel_in = g.write(f"img/{name}.rgba", rgba.tobytes())
        rgb = np.asarray(to_rgb(Image.fromarray(rgba, "RGBA")), np.uint8)
        rel_out = g.write(f"to_rgb/{name}.rgb", rgb.tobytes())
        g.manifest["to_rgb"].append({"width": rgba.shape[1], "height": rgba.shape[0], "input": rel_in, "file": rel_out})

    base = Image.fromarray(imgs["gradient_noise"], "RGB")
    for k in range(1, 9):
        tagged = base.copy()
        tagged.getexif()[0x0112] = k  # what a camera JPEG carries; to_rgb applies it
        upright = np.asarray(to_rgb(tagged), np.uint8)
        rel = g.write(f"orientation/gradient_noise_o{k}.rgb", upright.tobytes())
        g.manifest["orientation"].append({"image": "gradient_noise", "orientation": k, "file": rel,
                                          "width": upright.shape[1], "height": upright.shape[0]})

    metadata_cases(g)
    real_export_case(g)
    output_cases(g)
    (out / "manifest.json").write_text(json.dumps(g.manifest, indent=1))
    n = sum(len(v) for v in g.manifest.values() if isinstance(v, list))
    print(f"golden: {n} entries in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

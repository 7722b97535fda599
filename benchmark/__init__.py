"""FakeLens stage 4: accuracy tables and latency of .tflite models (`python -m benchmark`), and
verdicts on one's own photos (`python -m benchmark.predict`, or `from benchmark import Detector`)."""


def __getattr__(name):
    """`Detector` and `Prediction` load TensorFlow (through the metadata reader) only when used."""
    if name in ("Detector", "Prediction"):
        from benchmark import detector
        return getattr(detector, name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")

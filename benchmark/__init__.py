"""FakeLens stage 4: accuracy tables and latency of .tflite models, `python -m benchmark`."""

"""FakeLens stage 3: training run → .tflite (float32/float16/dynamic/int8) with metadata, `python -m convert`."""

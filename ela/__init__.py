"""FakeLens stage 1: Error Level Analysis and the image preprocessing every later stage shares."""
from ela.images import ImageError, decode_rgb, read_image, read_image_bytes, to_rgb
from ela.preprocess import FormatControl, Preprocessing
from ela.transform import ElaParams, error_level, jpeg_roundtrip

__all__ = ["ElaParams", "FormatControl", "ImageError", "Preprocessing", "decode_rgb",
           "error_level", "jpeg_roundtrip", "read_image", "read_image_bytes", "to_rgb"]

"""FakeLens stage 1: Error Level Analysis and the image preprocessing every later stage shares."""
from importlib.metadata import PackageNotFoundError, version

try:  # the one version number is pyproject.toml's; runs and exports record it
    __version__ = version("fakelens")
except PackageNotFoundError:  # a source tree that was never installed (`make setup` installs it)
    __version__ = "0+unknown"
from ela.images import ImageError, decode_rgb, read_image, read_image_bytes, to_rgb
from ela.preprocess import FormatControl, Preprocessing
from ela.transform import ElaParams, error_level, jpeg_roundtrip

__all__ = ["__version__", "ElaParams", "FormatControl", "ImageError", "Preprocessing", "decode_rgb",
           "error_level", "jpeg_roundtrip", "read_image", "read_image_bytes", "to_rgb"]

"""Error Level Analysis inside the model graph as a Keras layer, bit-exact with `ela.error_level`.

Why: a model trained on ELA maps must see the same maps on the phone. Computing the map inside
the .tflite means the app only feeds the resized RGB image and cannot drift from training:
`ElaLayer` reproduces Pillow's JPEG re-save (libjpeg-turbo defaults: baseline, 4:2:0, standard
tables scaled to the quality, islow integer DCT, fancy upsampling) and the ELA scaling, pixel for
pixel, for every quality 1..100 and both scale modes.

How: every step is a float32 op on exact integers, as ela/libjpeg.py defines and proves. Float
ops rather than int32 ones keep the graph fast under TFLite's XNNPACK delegate (about 1.1 ms at
224 x 224 on one x86 core) with builtin ops only: CAST (uint8 input), CONV_2D, FLOOR, ADD, SUB,
MUL, DIV, ABS, MAXIMUM, MINIMUM, RELU_N1_TO_1, RESHAPE, TRANSPOSE, STRIDED_SLICE, CONCATENATION,
REDUCE_MAX, plus GATHER for sizes that are not multiples of 16 and for fixed scales float32
cannot reproduce.

Exactness needs IEEE float32 arithmetic: the TF CPU kernels and the TFLite CPU kernels (with or
without XNNPACK) give it; a delegate that computes float32 in float16 (GPU, relaxed NNAPI) does
not.

Layout: the three planes are coded as one single-channel plane 1.5 x the luma size: luma on top,
then the subsampled chroma with Cb and Cr 8x8 blocks alternating along each row. Eight samples
of a row sit in the channel axis, so each 1-D DCT pass is a 1x1 conv over 8 channels, with one
transpose per 2-D transform to bring the other direction into the channel axis. Full-resolution
colour work is done eight pixels per position ([B, H, W/8, 24] is a free reshape of the image).
"""
from __future__ import annotations

import numpy as np

from ela import tf_env  # noqa: F401  (first: FakeLens' TensorFlow defaults, loaded without start-up noise)
import tensorflow as tf
import tf_keras

from ela.libjpeg import (CBCR_TO_RGB, FDCT, FDCT2_BITS, FDCT2_HI, FDCT2_LO, FDCT_SHIFT, IDCT1_BITS, IDCT1_HI, IDCT1_LO,
                         IDCT2_BITS, IDCT2_HI, IDCT2_LO, IDCT_SHIFT, QUANT_BITS, RGB_TO_YCC, RGB_TO_YCC_BIAS, SCALEBITS,
                         STD_CHROMINANCE, STD_LUMINANCE, check_ranges, float32_scale_ok, quant_table, scale_lut)
from ela.transform import ElaParams


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def _conv(x, weights, bias=None, strides=1):
    """Convolution with constant numpy weights [kh, kw, in, out] and an optional bias."""
    y = tf.nn.conv2d(x, tf.constant(weights, tf.float32), strides, "VALID")
    return y if bias is None else tf.nn.bias_add(y, tf.constant(bias, tf.float32))


def _pointwise(x, matrix, bias=None):
    """1x1 conv applying `matrix` [in, out] to the channel axis."""
    return _conv(x, np.asarray(matrix, np.float64)[None, None], bias)


def _replicate_edge(x, axis: int, size: int, valid: int | None = None):
    """Keep the first `valid` entries of `axis` (default: all) and repeat the last of them up
    to `size` entries: libjpeg's edge padding."""
    valid = x.shape[axis] if valid is None else valid
    if valid == size == x.shape[axis]:
        return x
    return tf.gather(x, np.minimum(np.arange(size), valid - 1), axis=axis)


@tf_keras.utils.register_keras_serializable(package="fakelens")
class ElaLayer(tf_keras.layers.Layer):
    """ELA map of a batch of RGB images, equal to `ela.error_level` of each image.

    Input: (B, H, W, 3) integer pixel values 0..255 as float32 or uint8; H and W static, any
    size (not only multiples of 16). Output: float32 (B, H, W, 3) holding integers 0..255.
    The parameters must have resolution="resized": in a graph the map is computed at the size
    the model sees, which is what that setting means.
    """

    def __init__(self, params: ElaParams | dict = ElaParams(resolution="resized"), **kwargs):
        kwargs.setdefault("dtype", "float32")  # float16 policies would break exactness
        super().__init__(**kwargs)
        if isinstance(params, dict):
            params = ElaParams.from_dict(params)
        if params.resolution != "resized":
            raise ValueError("ElaLayer computes ELA at the model input size: it needs "
                             f'ElaParams(resolution="resized"), got resolution={params.resolution!r}')
        self.params = params
        self.luma_q = quant_table(STD_LUMINANCE, params.quality)
        self.chroma_q = quant_table(STD_CHROMINANCE, params.quality)
        check_ranges([self.luma_q, self.chroma_q])
        # A fixed scale that float32 arithmetic cannot reproduce uses a 256-entry lookup table.
        self.scale_lut = None
        if params.scale != "auto" and not float32_scale_ok(params.scale):
            self.scale_lut = scale_lut(params.scale)

    def get_config(self):
        return {**super().get_config(), "params": self.params.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[:-1]).concatenate([3])

    def call(self, images):
        shape = images.shape
        if len(shape) != 4 or shape[1] is None or shape[2] is None or shape[3] != 3:
            raise ValueError(f"ElaLayer needs a (batch, height, width, 3) input with static "
                             f"height and width, got {shape}")
        h, w = shape[1], shape[2]
        x = tf.cast(images, tf.float32)
        x = _replicate_edge(_replicate_edge(x, 1, _ceil_to(h, 16)), 2, _ceil_to(w, 16))
        rows = self._forward_rows(x, h)
        decoded = self._inverse_dct(self._forward_columns_and_quantise(rows, x.shape[1] // 8))
        return self._scale(self._difference(decoded, x, h, w))

    # --- encoder: colour conversion, subsampling, forward DCT pass 1 --------------------------
    def _forward_rows(self, x, h):
        """Colour conversion, 4:2:0 subsampling and the forward DCT's row pass.

        `x` is the image padded to whole 16 x 16 MCUs by repeating its last row and column
        (jcprepct.c / jcsample.c expand_*_edge). Chroma rows below the image repeat the last
        subsampled row. Returns [B, 1.5 * rows, columns / 8, 8 (horizontal frequency)].
        """
        hp, wp = x.shape[1], x.shape[2]
        groups = wp // 8
        # rgb_ycc_convert on 8 pixels per position: channels (pixel, rgb) -> (Y x8, Cb x8, Cr x8),
        # all centred on 0 (the forward DCT subtracts 128 anyway).
        to_ycc = np.einsum("pq,ck->pkcq", np.eye(8), RGB_TO_YCC).reshape(24, 24) / 2 ** SCALEBITS
        ycc = tf.floor(_pointwise(tf.reshape(x, (-1, hp, groups, 24)), to_ycc,
                                  np.repeat(RGB_TO_YCC_BIAS, 8) / 2 ** SCALEBITS))
        fdct1 = FDCT.T / 2 ** FDCT_SHIFT[0]   # [sample, frequency]; the +0.5 is the rounding
        luma = tf.floor(_pointwise(ycc, np.concatenate([fdct1, np.zeros((16, 8))]), np.full(8, 0.5)))
        # h2v2_downsample: (2x2 sum + bias) >> 2 with bias 1, 2, 1, 2, ... along the row.
        # Out channels (component, 4 subsampled columns); column parity = channel parity.
        down = np.zeros((2, 1, 24, 8))
        for comp in range(2):
            for k in range(4):
                first = 8 + 8 * comp + 2 * k
                down[:, 0, first:first + 2, 4 * comp + k] = 0.25
        chroma = tf.floor(_conv(ycc, down, np.tile([0.25, 0.5], 4), strides=(1, 2, 1, 1)))
        chroma = _replicate_edge(chroma, 1, hp // 2, valid=-(-h // 2))
        # Row pass over 8 subsampled columns (two positions); out channels (component, frequency),
        # which makes Cb and Cr blocks alternate along the row.
        row_pass = np.zeros((2, 2, 4, 2, 8))   # [position, component, column, component, freq]
        for comp in range(2):
            row_pass[:, comp, :, comp, :] = fdct1.reshape(2, 4, 8)
        chroma = tf.floor(_pointwise(tf.reshape(chroma, (-1, hp // 2, groups // 2, 16)),
                                     row_pass.reshape(16, 16), np.full(16, 0.5)))
        return tf.concat([luma, tf.reshape(chroma, (-1, hp // 2, groups, 8))], 1)

    # --- forward DCT pass 2 and quantisation --------------------------------------------------
    def _forward_columns_and_quantise(self, rows, luma_block_rows: int):
        """Column pass of the forward DCT, quantisation and dequantisation (jcdctmgr.c).

        Returns the dequantised coefficients as [B, block rows, blocks * 8 (u), 8 (v)].
        """
        block_rows, groups = rows.shape[1] // 8, rows.shape[2]
        columns = tf.transpose(tf.reshape(rows, (-1, block_rows, 8, groups, 8)), (0, 1, 3, 4, 2))
        columns = tf.reshape(columns, (-1, block_rows, groups * 8, 8))
        k, m = FDCT2_BITS, QUANT_BITS
        low = tf.floor(_pointwise(columns, FDCT2_LO.T / 2 ** k, np.full(8, 2.0 ** (FDCT_SHIFT[1] - 1 - k))))
        x = tf.reshape(_pointwise(columns, FDCT2_HI.T) + low, (-1, block_rows, groups, 64))
        # The DCT coefficient is c = floor(x / 2**m). libjpeg rounds c / 8Q half away from zero:
        # floor((c + 4Q) / 8Q) for c >= 0, floor((c + 4Q - 1) / 8Q) for c < 0, i.e.
        # q = floor(N / D) with D = 8Q * 2**m and N = x + 4Q * 2**m + 1/2 - 2**m [x < 0].
        # With sign = clip(x, -1, 1) (exact for integers) the offset
        # 4Q * 2**m + 1/2 + 2**(m-1) * (sign - 1) is right for x > 0, x < 0 and x == 0. N is a
        # half-integer, so N / D is at least 0.5 / D from an integer: more than the error of
        # computing it as x * (1/D) + sign * (2**(m-1)/D) + offset/D in float32.
        q = np.concatenate([np.repeat(self.luma_q.T.reshape(1, 64), luma_block_rows, 0),
                            np.repeat(self.chroma_q.T.reshape(1, 64), block_rows - luma_block_rows, 0)])
        q = q[:, None].astype(np.float64)   # [block row, 1, u * 8 + v]
        d = 8 * q * 2 ** m
        sign = tf.clip_by_value(x, -1.0, 1.0)
        quotient = x * tf.constant(1 / d, tf.float32) + sign * tf.constant(2 ** (m - 1) / d, tf.float32)
        offset = (4 * q * 2 ** m + 0.5 - 2 ** (m - 1)) / d
        coef = tf.floor(quotient + tf.constant(offset, tf.float32)) * tf.constant(q, tf.float32)
        return tf.reshape(coef, (-1, block_rows, groups * 8, 8))

    # --- inverse DCT --------------------------------------------------------------------------
    @staticmethod
    def _inverse_dct(coef):
        """jpeg_idct_islow of every block: centred samples clamped to -128..127, [B, rows, W]."""
        block_rows, groups = coef.shape[1], coef.shape[2] // 8
        low = tf.floor(_pointwise(coef, IDCT1_LO.T / 2 ** IDCT1_BITS, np.full(8, 0.5)))
        ws = _pointwise(coef, IDCT1_HI.T) + low            # [B, block rows, groups * 8 (u), 8 (y)]
        ws = tf.transpose(tf.reshape(ws, (-1, block_rows, groups, 8, 8)), (0, 1, 4, 2, 3))
        ws = tf.reshape(ws, (-1, block_rows * 8, groups, 8))  # [B, rows, groups, 8 (u)]
        k, s = IDCT2_BITS, IDCT_SHIFT[1]
        low = tf.floor(_pointwise(ws, IDCT2_LO.T / 2 ** k, np.full(8, 2.0 ** (s - 1 - k))))
        samples = tf.floor((_pointwise(ws, IDCT2_HI.T) + low) * 2.0 ** (k - s))
        # Saturate: libjpeg-turbo's SIMD IDCT (Pillow's build, checked) does; its C version
        # would wrap values beyond +-512 around instead, which only the lowest qualities reach.
        samples = tf.clip_by_value(samples, -128.0, 127.0)
        return tf.reshape(samples, (-1, block_rows * 8, groups * 8))

    # --- decoder: upsampling, colour conversion, difference -----------------------------------
    def _difference(self, decoded, padded, h, w):
        """|original - decoded RGB| as float32 [B, h, w, 3]."""
        hp = padded.shape[1]
        w8 = _ceil_to(w, 8)
        luma = tf.reshape(decoded[:, :h, :w8], (-1, h, w8 // 8, 8))
        chroma = self._upsample_chroma(decoded[:, hp:], h, w)[:, :h]   # [B, h, w8/8, Cb x8 + Cr x8]
        # ycc_rgb_convert: channel = y + ((chroma * FIX + ONE_HALF) >> 16), clamped to 0..255.
        chroma_to_rgb = np.zeros((2, 8, 8, 3))   # [component, pixel, pixel, rgb]
        luma_to_rgb = np.zeros((8, 8, 3))
        for p in range(8):
            chroma_to_rgb[:, p, p] = CBCR_TO_RGB / 2 ** SCALEBITS
            luma_to_rgb[p, p] = 1.0
        chroma_part = tf.floor(_pointwise(chroma, chroma_to_rgb.reshape(16, 24), np.full(24, 0.5)))
        luma_part = _pointwise(luma, luma_to_rgb.reshape(8, 24), np.full(24, 128.0))
        rgb = tf.minimum(tf.nn.relu(chroma_part + luma_part), 255.0)
        original = tf.reshape(padded[:, :h, :w8], (-1, h, w8 // 8, 24))
        diff = tf.reshape(tf.abs(original - rgb), (-1, h, w8, 3))
        return diff[:, :, :w] if w8 != w else diff

    @staticmethod
    def _upsample_chroma(chroma_rows, h, w):
        """h2v2_fancy_upsample (jdsample.c) of Cb and Cr: [B, 2 * ceil(h/2), w8/8, Cb x8 + Cr x8].

        Output pixel (2r + a, 2k + b) = (9 c[r,k] + 3 c[r±1,k] + 3 c[r,k±1] + c[r±1,k±1] + 8 - b)
        >> 4, the signs following a and b, with the last real row and column repeated beyond
        the edge (decoded samples outside the image are not used). A conv with a 3 x 6 window
        moving 4 chroma columns at a time gives 2 rows x 8 output pixels per position.
        libjpeg-turbo replicates instead (h2v2_upsample) when the chroma is at most 2 wide.
        """
        hc, wc = -(-h // 2), -(-w // 2)
        groups = _ceil_to(w, 8) // 8
        rows, width = chroma_rows.shape[1], chroma_rows.shape[2]
        # Cb and Cr blocks alternate along each row: make them two single-channel images.
        planes = tf.transpose(tf.reshape(chroma_rows, (-1, rows, width // 16, 2, 8)), (0, 3, 1, 2, 4))
        planes = tf.reshape(planes, (-1, rows, width // 2, 1))
        planes = tf.concat([planes[:, :1], planes[:, :hc], planes[:, hc - 1:hc]], 1)
        right = [planes[:, :, wc - 1:wc]] * (4 * groups + 1 - wc)
        planes = tf.concat([planes[:, :, :1], planes[:, :, :wc]] + right, 2)
        kernel = np.zeros((3, 6, 1, 2, 8))   # [row tap, column tap, 1, a, pixel 2k + b]
        bias = np.zeros((2, 8))
        vertical = [{0: 1, 1: 3}, {1: 3, 2: 1}]   # a -> {row tap: weight}
        for a in range(2):
            for p in range(8):
                k, b = divmod(p, 2)                # chroma column k sits at column tap k + 1
                if wc > 2:
                    bias[a, p] = (8 - b) / 16
                    for ty, wy in vertical[a].items():
                        for tx, wx in {k + 1: 3, k + 2 * b: 1}.items():
                            kernel[ty, tx, 0, a, p] += wy * wx / 16
                else:
                    kernel[1, k + 1, 0, a, p] = 1.0
        up = tf.floor(_conv(planes, kernel.reshape(3, 6, 1, 16), bias.reshape(16), strides=(1, 1, 4, 1)))
        up = tf.transpose(tf.reshape(up, (-1, 2, hc, groups, 2, 8)), (0, 2, 4, 3, 1, 5))
        return tf.reshape(up, (-1, 2 * hc, groups, 16))

    # --- ELA scaling --------------------------------------------------------------------------
    def _scale(self, diff):
        scale = self.params.scale
        if scale == "auto":
            # (diff * 255 + peak // 2) // peak per image. Adding 1/2 to the integer numerator
            # keeps the exact quotient at least 0.5 / peak from an integer, far more than the
            # float32 error of diff * (255 / peak) + (peak // 2 + 1/2) / peak. peak 0 gives 0.
            peak = tf.maximum(tf.reduce_max(diff, axis=(1, 2, 3), keepdims=True), 1.0)
            return tf.floor(diff * (255.0 / peak) + (tf.floor(peak * 0.5) + 0.5) / peak)
        if self.scale_lut is not None:
            return tf.gather(tf.constant(self.scale_lut, tf.float32), tf.cast(diff, tf.int32))
        return tf.minimum(tf.floor(diff * float(np.float32(scale)) + 0.5), 255.0)


def ela_model(params: ElaParams, size: int, input_dtype: str = "float32") -> tf_keras.Model:
    """The ELA alone: (B, size, size, 3) RGB 0..255 -> float32 ELA map of the same shape."""
    inputs = tf_keras.Input((size, size, 3), dtype=input_dtype, name="image")
    return tf_keras.Model(inputs, ElaLayer(params, name="ela")(inputs), name="ela_model")

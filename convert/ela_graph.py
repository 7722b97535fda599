"""Error Level Analysis inside the model graph, bit-exact with `ela.error_level`.

Why: a model trained on ELA maps must see the same maps on the phone. Computing the map inside
the .tflite means the app only feeds the resized RGB image and cannot drift from training:
`ElaLayer` reproduces Pillow's JPEG re-save (libjpeg-turbo defaults: baseline, 4:2:0, standard
tables scaled to the quality, islow integer DCT, fancy upsampling) and the ELA scaling, pixel for
pixel, for every quality 1..100 and both scale modes.

How: libjpeg-turbo computes in integers with shifts. Here every step is a float32 op whose
values are integers (or integers times a power of two) small enough to be exact in float32
(below 2**24), and each `DESCALE(x, n) = (x + 2**(n-1)) >> n` becomes floor((x + 2**(n-1)) / 2**n).
The 8-point DCTs are 1x1 convolutions with the integer matrices libjpeg's butterflies multiply
by. Where a dot product could pass 2**24 its matrix is split into a high and a low part with
separate accumulators (`_split`); `_check_ranges` proves, for the chosen quality, that nothing
the graph can produce leaves the exact range. Float ops rather than int32 ones keep the graph
fast under TFLite's XNNPACK delegate (about 1.1 ms at 224 x 224 on one x86 core) with builtin ops
only: CAST (uint8 input), CONV_2D, FLOOR, ADD, SUB, MUL, DIV, ABS, MAXIMUM, MINIMUM,
RELU_N1_TO_1, RESHAPE, TRANSPOSE, STRIDED_SLICE, CONCATENATION, REDUCE_MAX, plus GATHER for sizes
that are not multiples of 16 and for fixed scales float32 cannot reproduce.

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

from ela.tf_env import quiet_conversion  # first: FakeLens' TensorFlow defaults, loaded without start-up noise
import tensorflow as tf
import tf_keras

from convert.variants import INTEGER_IO_DTYPE
from ela.transform import ElaParams

EXACT_LIMIT = 2 ** 24  # every integer up to here is exact in float32

# jcparam.c: the JPEG standard's example tables (Annex K), natural order, [vertical][horizontal].
STD_LUMINANCE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99]])
STD_CHROMINANCE = np.full((8, 8), 99)
STD_CHROMINANCE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]


def quant_table(base: np.ndarray, quality: int) -> np.ndarray:
    """jpeg_quality_scaling + jpeg_add_quant_table with force_baseline, as Pillow asks for."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


# --- The islow DCT butterflies as exact integer matrices -------------------------------------
# jfdctint.c / jidctint.c compute each output as an integer linear combination of the inputs
# and then DESCALE it; running the butterflies on the identity gives that combination as a
# matrix. The DC terms, which libjpeg shifts left instead of multiplying, are scaled by
# 2**CONST_BITS so that all eight outputs of a pass share one descale shift.
CONST_BITS, PASS1_BITS = 13, 2


def _fix(x: float) -> int:
    return int(x * (1 << CONST_BITS) + 0.5)


def _odd_part(t0, t1, t2, t3):
    """The rotation both islow DCTs apply to their odd half."""
    z1, z2, z3, z4 = t0 + t3, t1 + t2, t0 + t2, t1 + t3
    z5 = (z3 + z4) * _fix(1.175875602)
    z1, z2 = z1 * -_fix(0.899976223), z2 * -_fix(2.562915447)
    z3, z4 = z3 * -_fix(1.961570560) + z5, z4 * -_fix(0.390180644) + z5
    return (t0 * _fix(0.298631336) + z1 + z3, t1 * _fix(2.053119869) + z2 + z4,
            t2 * _fix(3.072711026) + z2 + z3, t3 * _fix(1.501321110) + z1 + z4)


def _fdct_1d(d):
    """jpeg_fdct_islow on one row or column, before descaling; outputs in frequency order."""
    t0, t1, t2, t3 = d[0] + d[7], d[1] + d[6], d[2] + d[5], d[3] + d[4]
    t7, t6, t5, t4 = d[0] - d[7], d[1] - d[6], d[2] - d[5], d[3] - d[4]
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    z1 = (t12 + t13) * _fix(0.541196100)
    o7, o5, o3, o1 = _odd_part(t4, t5, t6, t7)
    return [(t10 + t11) << CONST_BITS, o1, z1 + t13 * _fix(0.765366865), o3,
            (t10 - t11) << CONST_BITS, o5, z1 - t12 * _fix(1.847759065), o7]


def _idct_1d(c):
    """jpeg_idct_islow on one column or row, before descaling; outputs in sample order."""
    z1 = (c[2] + c[6]) * _fix(0.541196100)
    t2, t3 = z1 - c[6] * _fix(1.847759065), z1 + c[2] * _fix(0.765366865)
    t0, t1 = (c[0] + c[4]) << CONST_BITS, (c[0] - c[4]) << CONST_BITS
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    o0, o1, o2, o3 = _odd_part(c[7], c[5], c[3], c[1])
    return [t10 + o3, t11 + o2, t12 + o1, t13 + o0, t13 - o0, t12 - o1, t11 - o2, t10 - o3]


def _matrix(butterflies) -> np.ndarray:
    """M[out, in] such that butterflies(v) == M @ v for integer vectors v."""
    return np.stack(butterflies(list(np.eye(8, dtype=np.int64))), 0)


FDCT = _matrix(_fdct_1d)   # pass 1 (rows) descales by 11 bits, pass 2 (columns) by 15
IDCT = _matrix(_idct_1d)   # pass 1 (columns) descales by 11 bits, pass 2 (rows) by 18
FDCT_SHIFT = (CONST_BITS - PASS1_BITS, CONST_BITS + PASS1_BITS)
IDCT_SHIFT = (CONST_BITS - PASS1_BITS, CONST_BITS + PASS1_BITS + 3)


def _split(m: np.ndarray, bits: int):
    """m == hi * 2**bits + lo with integer hi and lo in [-2**(bits-1), 2**(bits-1))."""
    hi = np.floor((m + 2 ** (bits - 1)) / 2 ** bits)
    return hi, m - hi * 2 ** bits


# Where the three big dot products are split (proved safe by _check_ranges):
# forward pass 2 keeps 9 low bits per weight and so leaves its result scaled by 2**QUANT_BITS,
# inverse pass 1 splits at its own descale (11 bits), inverse pass 2 at 7 bits and then descales
# in two steps, floor(floor(x / 2**7) / 2**11) == floor(x / 2**18).
FDCT2_BITS, IDCT1_BITS, IDCT2_BITS = 9, 11, 7
FDCT2_HI, FDCT2_LO = _split(FDCT, FDCT2_BITS)
IDCT1_HI, IDCT1_LO = _split(IDCT, IDCT1_BITS)
IDCT2_HI, IDCT2_LO = _split(IDCT, IDCT2_BITS)
QUANT_BITS = FDCT_SHIFT[1] - FDCT2_BITS

# --- Colour conversion (jccolor.c / jdcolor.c), 16-bit fixed point ---------------------------
SCALEBITS = 16


def _fix16(x: float) -> int:
    return int(x * (1 << SCALEBITS) + 0.5)


RGB_TO_YCC = np.array([[_fix16(0.29900), _fix16(0.58700), _fix16(0.11400)],
                       [-_fix16(0.16874), -_fix16(0.33126), _fix16(0.5)],
                       [_fix16(0.5), -_fix16(0.41869), -_fix16(0.08131)]])
# Rounding constants once 128 is taken off every sample (libjpeg's CBCR_OFFSET cancels it):
# Y gets ONE_HALF - 128 << 16, Cb and Cr ONE_HALF - 1.
RGB_TO_YCC_BIAS = np.array([(1 << 15) - (128 << SCALEBITS), (1 << 15) - 1, (1 << 15) - 1])
# Rows Cb, Cr; columns R, G, B: R = Y + 1.402 Cr, G = Y - 0.34414 Cb - 0.71414 Cr, B = Y + 1.772 Cb.
CBCR_TO_RGB = np.array([[0, -_fix16(0.34414), _fix16(1.77200)],
                        [_fix16(1.40200), -_fix16(0.71414), 0]])


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def _check_ranges(tables) -> None:
    """Prove every intermediate of the DCT stages stays exact in float32, else raise.

    Each accumulation is bounded by sum(|weight|) * max|input| plus its rounding constant, and
    must stay below 2**24. The inverse DCT's pass-1 outputs get a tighter bound: a dequantised
    coefficient is the forward DCT's output c = FDCT @ rows / 2**15 + (at most 1/2) divided by
    8, plus at most Q/2, and IDCT @ FDCT / 2**18 is close to 2**11 times the identity, so that
    pass returns the forward row-pass values plus the spread quantisation error.
    """
    def need(value, what):
        if np.max(value) >= EXACT_LIMIT:
            raise AssertionError(f"ELA graph: {what} may reach {np.max(value):.0f} >= 2**24")

    s1, s2 = FDCT_SHIFT
    fdct1 = np.abs(FDCT).sum(1) * 128 + 2 ** (s1 - 1)
    need(fdct1, "forward DCT pass 1")
    rows = fdct1.max() / 2 ** s1 + 1
    lo = np.abs(FDCT2_LO).sum(1) * rows + 2 ** (s2 - 1)
    hi = np.abs(FDCT2_HI).sum(1) * rows
    need(lo, "forward DCT pass 2 (low part)")
    need(hi, "forward DCT pass 2 (high part)")
    x_max = hi.max() + lo.max() / 2 ** FDCT2_BITS + 1
    for q in tables:
        q_max = float(q.max())
        # ElaLayer._forward_columns_and_quantise: the float32 error of its division stays below
        # the 0.5 / D margin while the numerator is below 2**20.
        if x_max + (4 * q_max + 1) * 2 ** QUANT_BITS >= 2 ** 20:
            raise AssertionError("ELA graph: quantisation margin too small")
        coef = (x_max / 2 ** QUANT_BITS + 1) / 8 + q_max / 2   # |dequantised coefficient|
        lo1 = np.abs(IDCT1_LO).sum(1) * coef + 2 ** (IDCT_SHIFT[0] - 1)
        hi1 = np.abs(IDCT1_HI).sum(1) * coef
        need(lo1, "inverse DCT pass 1 (low part)")
        need(hi1, "inverse DCT pass 1 (high part)")
        near_identity = IDCT @ FDCT / 2 ** (s2 + 3)
        ws = (np.abs(near_identity).sum(1).max() * rows
              + np.abs(IDCT).sum(1).max() * (1 / 16 + q_max / 2)) / 2 ** IDCT_SHIFT[0] + 1
        ws = min(ws, hi1.max() + lo1.max() / 2 ** IDCT1_BITS + 1)
        lo2 = np.abs(IDCT2_LO).sum(1) * ws + 2 ** (IDCT_SHIFT[1] - 1)
        hi2 = np.abs(IDCT2_HI).sum(1) * ws
        need(lo2, "inverse DCT pass 2 (low part)")
        need(hi2 + lo2 / 2 ** IDCT2_BITS + 1, "inverse DCT pass 2")


def _scale_lut(scale: float) -> np.ndarray:
    """ela.error_level's fixed-scale map (computed in float64 there) for differences 0..255."""
    return np.minimum(np.floor(np.arange(256) * float(scale) + 0.5), 255)


def _float32_scale_ok(scale: float) -> bool:
    """Whether floor(d * f32(scale) + 0.5) in float32, fused or not, equals the float64 map."""
    d = np.arange(256, dtype=np.float32)
    s = np.float32(scale)
    separate = np.floor((d * s).astype(np.float32) + np.float32(0.5))
    fused = np.floor((d.astype(np.float64) * np.float64(s) + 0.5).astype(np.float32))
    want = _scale_lut(scale)
    return bool(np.array_equal(np.minimum(separate, 255), want)
                and np.array_equal(np.minimum(fused, 255), want))


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
        _check_ranges([self.luma_q, self.chroma_q])
        # A fixed scale that float32 arithmetic cannot reproduce uses a 256-entry lookup table.
        self.scale_lut = None
        if params.scale != "auto" and not _float32_scale_ok(params.scale):
            self.scale_lut = _scale_lut(params.scale)

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


def ela_tensor_names(tflite_model: bytes, model: tf_keras.Model) -> list[str]:
    """Names of the tensors `model`'s ElaLayers produce in its (unquantised) .tflite."""
    from ai_edge_litert.interpreter import Interpreter
    scopes = [layer.name for layer in model.submodules if isinstance(layer, ElaLayer)]
    names = [t["name"] for t in Interpreter(model_content=tflite_model).get_tensor_details()]
    return [n for n in names
            if any(part.startswith(f"{s}/") or f"/{s}/" in part for part in n.split(";") for s in scopes)]


def quantize_keeping_ela_float(model: tf_keras.Model, representative_dataset) -> bytes:
    """Full-integer quantisation of everything in `model` except its ElaLayers.

    A plain full-integer conversion (Optimize.DEFAULT + representative dataset) converts, but it
    quantises the ELA's convolutions and additions to int8 too, which destroys the map. Here the
    model is calibrated as usual and then quantised by the same MLIR quantiser the converter runs
    for the plain int8 export, with the ELA's tensors deny-listed (selective quantisation, as
    tf.lite.experimental.QuantizationDebugger does it): the ELA stays float32 and exact, what
    follows it becomes int8 behind one QUANTIZE op, and float outputs become INTEGER_IO_DTYPE
    (uint8) like the plain int8 export's, which standard clients require (an ELA map output gets
    scale 1, zero point 0: still exact). Give the Keras model a uint8 input
    (tf_keras.Input(..., dtype="uint8")), which stays uint8.
    `representative_dataset` yields lists of input arrays, as for TFLiteConverter.
    """
    # The converter's own internals (the debugger uses the same two): calibrate only, then quantise.
    from tensorflow.lite.python.convert import mlir_quantize
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True
    with quiet_conversion():
        calibrated = converter.convert()
        return mlir_quantize(calibrated, output_data_type=tf.as_dtype(INTEGER_IO_DTYPE),
                             denylisted_nodes=ela_tensor_names(calibrated, model))

"""libjpeg-turbo's JPEG arithmetic as exact integer matrices and tables (numpy only), with the
proof that float32 reproduces it.

Why here, in `ela`: one definition of the JPEG quality tables and of the islow DCT serves the
in-graph ELA (convert/ela_layer.py) and the format audit's quality estimate (train/format_audit.py).

How: libjpeg-turbo computes in integers with shifts. The in-graph ELA runs every step as a
float32 op whose values are integers (or integers times a power of two) small enough to be exact
in float32 (below 2**24), and each `DESCALE(x, n) = (x + 2**(n-1)) >> n` becomes
floor((x + 2**(n-1)) / 2**n). The 8-point DCTs are 1x1 convolutions with the integer matrices
libjpeg's butterflies multiply by (`FDCT`, `IDCT`). Where a dot product could pass 2**24 its
matrix is split into a high and a low part with separate accumulators (`_split`);
`check_ranges` proves, for the chosen quality, that nothing the graph can produce leaves the
exact range.
"""
from __future__ import annotations

import numpy as np

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


# Where the three big dot products are split (proved safe by check_ranges):
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


LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights: JPEG's Y, PIL's convert("L"), train.model's grey layer
RGB_TO_YCC = np.array([[_fix16(LUMA[0]), _fix16(LUMA[1]), _fix16(LUMA[2])],
                       [-_fix16(0.16874), -_fix16(0.33126), _fix16(0.5)],
                       [_fix16(0.5), -_fix16(0.41869), -_fix16(0.08131)]])
# Rounding constants once 128 is taken off every sample (libjpeg's CBCR_OFFSET cancels it):
# Y gets ONE_HALF - 128 << 16, Cb and Cr ONE_HALF - 1.
RGB_TO_YCC_BIAS = np.array([(1 << 15) - (128 << SCALEBITS), (1 << 15) - 1, (1 << 15) - 1])
# Rows Cb, Cr; columns R, G, B: R = Y + 1.402 Cr, G = Y - 0.34414 Cb - 0.71414 Cr, B = Y + 1.772 Cb.
CBCR_TO_RGB = np.array([[0, -_fix16(0.34414), _fix16(1.77200)],
                        [_fix16(1.40200), -_fix16(0.71414), 0]])


def check_ranges(tables) -> None:
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
        # convert.ela_layer.ElaLayer._forward_columns_and_quantise: the float32 error of its division stays below
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


def scale_lut(scale: float) -> np.ndarray:
    """ela.error_level's fixed-scale map (computed in float64 there) for differences 0..255."""
    return np.minimum(np.floor(np.arange(256) * float(scale) + 0.5), 255)


def float32_scale_ok(scale: float) -> bool:
    """Whether floor(d * f32(scale) + 0.5) in float32, fused or not, equals the float64 map."""
    d = np.arange(256, dtype=np.float32)
    s = np.float32(scale)
    separate = np.floor((d * s).astype(np.float32) + np.float32(0.5))
    fused = np.floor((d.astype(np.float64) * np.float64(s) + 0.5).astype(np.float32))
    want = scale_lut(scale)
    return bool(np.array_equal(np.minimum(separate, 255), want)
                and np.array_equal(np.minimum(fused, 255), want))

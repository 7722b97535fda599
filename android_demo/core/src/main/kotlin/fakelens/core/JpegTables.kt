package fakelens.core

/**
 * libjpeg's quality → quantisation-table rule (jpeg_set_quality with force_baseline = TRUE),
 * which Pillow and Android's Bitmap.compress both use, and a reader for the parts of a JPEG
 * header that decide how it re-compresses. Used to configure and check other encoders.
 */
object JpegTables {
    /** ITU T.81 Annex K.1 luminance table, natural (row-major) order. */
    val STD_LUMINANCE = intArrayOf(
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    )

    /** ITU T.81 Annex K.2 chrominance table, natural order. */
    val STD_CHROMINANCE = intArrayOf(
        17, 18, 24, 47, 99, 99, 99, 99,
        18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99,
        47, 66, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
    )

    /** Zig-zag index k → natural index (row*8 + col). */
    val ZIGZAG = intArrayOf(
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    )

    /** jpeg_quality_scaling: percentage applied to the standard tables. */
    fun qualityScaling(quality: Int): Int {
        val q = quality.coerceIn(1, 100)
        return if (q < 50) 5000 / q else 200 - q * 2
    }

    /** A standard table scaled for [quality], natural order, clamped to 1..255 (baseline). */
    fun scaled(base: IntArray, quality: Int): IntArray {
        val s = qualityScaling(quality)
        return IntArray(64) { ((base[it] * s + 50) / 100).coerceIn(1, 255) }
    }

    fun luminance(quality: Int) = scaled(STD_LUMINANCE, quality)
    fun chrominance(quality: Int) = scaled(STD_CHROMINANCE, quality)

    /** What a JPEG file's header says about how it was compressed. */
    class Header(
        /** Quantisation tables by id, natural order. */
        val qTables: Map<Int, IntArray>,
        /** SOF marker (0xC0 baseline, 0xC1 extended, 0xC2 progressive, ...). */
        val sofMarker: Int,
        val width: Int,
        val height: Int,
        /** Per component: (id, horizontal sampling, vertical sampling, quantisation table id). */
        val components: List<IntArray>,
        /** Entropy-coded data of the first scan: [scanStart, scanEnd) in the file. */
        val scanStart: Int,
        val scanEnd: Int,
    ) {
        val isBaseline get() = sofMarker == 0xC0
        /** "4:2:0" when luma is sampled 2x2 and both chroma components 1x1, etc. */
        val subsampling: String
            get() {
                if (components.size != 3) return "${components.size} components"
                val (y, cb, cr) = components
                if (cb[1] != 1 || cb[2] != 1 || cr[1] != 1 || cr[2] != 1) return "other"
                return when (y[1] to y[2]) {
                    2 to 2 -> "4:2:0"
                    2 to 1 -> "4:2:2"
                    1 to 1 -> "4:4:4"
                    else -> "other"
                }
            }
    }

    /** Parses the markers up to and including the first scan. */
    fun readHeader(jpeg: ByteArray): Header {
        fun u8(o: Int) = jpeg[o].toInt() and 0xFF
        fun u16(o: Int) = (u8(o) shl 8) or u8(o + 1)
        if (jpeg.size < 4 || u8(0) != 0xFF || u8(1) != 0xD8) throw IllegalArgumentException("not a JPEG (no SOI marker)")
        val q = HashMap<Int, IntArray>()
        var sof = -1
        var w = 0
        var h = 0
        val comps = ArrayList<IntArray>()
        var p = 2
        while (p + 4 <= jpeg.size) {
            if (u8(p) != 0xFF) throw IllegalArgumentException("corrupt JPEG: marker expected at $p")
            val marker = u8(p + 1)
            if (marker == 0xFF) { p++; continue } // fill byte
            val len = u16(p + 2)
            val seg = p + 4
            when (marker) {
                0xDB -> {
                    var o = seg
                    while (o < p + 2 + len) {
                        val pq = u8(o) shr 4
                        val tq = u8(o) and 15
                        val t = IntArray(64)
                        for (k in 0 until 64) t[ZIGZAG[k]] = if (pq == 0) u8(o + 1 + k) else u16(o + 1 + 2 * k)
                        q[tq] = t
                        o += 1 + 64 * (pq + 1)
                    }
                }
                in 0xC0..0xCF -> if (marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
                    sof = marker
                    h = u16(seg + 1)
                    w = u16(seg + 3)
                    val n = u8(seg + 5)
                    for (c in 0 until n) {
                        val o = seg + 6 + 3 * c
                        comps.add(intArrayOf(u8(o), u8(o + 1) shr 4, u8(o + 1) and 15, u8(o + 2)))
                    }
                }
                0xDA -> {
                    val start = p + 2 + len
                    var e = start
                    while (e + 1 < jpeg.size) {
                        if (u8(e) == 0xFF) {
                            val m = u8(e + 1)
                            if (m != 0x00 && m !in 0xD0..0xD7) break // a real marker ends the scan
                        }
                        e++
                    }
                    return Header(q, sof, w, h, comps, start, e)
                }
            }
            p += 2 + len
        }
        throw IllegalArgumentException("corrupt JPEG: no scan found")
    }
}

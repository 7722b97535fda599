package fakelens.core

import java.util.zip.DataFormatException
import java.util.zip.Inflater

/**
 * Reads the associated files (labels.txt, fakelens.json) that the TFLite metadata populator
 * stores in a zip appended to the model's flatbuffer. Works on the model bytes directly (an
 * Android asset, a memory-mapped file), so nothing has to be copied to disk first.
 *
 * Only what such a zip uses is supported: a single disk, entries stored or deflated, no
 * encryption, no ZIP64.
 */
class AssociatedFiles private constructor(private val bytes: ByteArray, private val entries: Map<String, Entry>) {

    private class Entry(val method: Int, val compressedSize: Int, val size: Int, val localHeader: Int, val crc: Long)

    val names: Set<String> get() = entries.keys

    operator fun contains(name: String) = name in entries

    /** The bytes of entry [name], or null if the model has no such associated file. */
    fun read(name: String): ByteArray? {
        val e = entries[name] ?: return null
        val lh = e.localHeader
        if (lh < 0 || lh + 30 > bytes.size || u32(bytes, lh) != LOCAL_SIG) {
            throw AssociatedFilesException("corrupt zip: bad local header for $name")
        }
        val dataStart = lh + 30 + u16(bytes, lh + 26) + u16(bytes, lh + 28)
        if (dataStart + e.compressedSize > bytes.size) throw AssociatedFilesException("corrupt zip: $name runs past the end")
        val out = when (e.method) {
            0 -> bytes.copyOfRange(dataStart, dataStart + e.compressedSize)
            8 -> inflate(name, dataStart, e)
            else -> throw AssociatedFilesException("$name uses zip compression method ${e.method}; only stored and deflated are supported")
        }
        val crc = java.util.zip.CRC32().apply { update(out) }.value
        if (crc != e.crc) throw AssociatedFilesException("corrupt zip: CRC mismatch in $name")
        return out
    }

    fun readText(name: String): String? = read(name)?.toString(Charsets.UTF_8)

    private fun inflate(name: String, start: Int, e: Entry): ByteArray {
        val inf = Inflater(true) // raw deflate, as stored in zip entries
        try {
            inf.setInput(bytes, start, e.compressedSize)
            val out = ByteArray(e.size)
            var n = 0
            while (n < out.size) {
                val k = inf.inflate(out, n, out.size - n)
                if (k == 0 && (inf.finished() || inf.needsInput() || inf.needsDictionary())) break
                n += k
            }
            if (n != e.size) throw AssociatedFilesException("corrupt zip: $name inflated to $n bytes, expected ${e.size}")
            return out
        } catch (ex: DataFormatException) {
            throw AssociatedFilesException("corrupt zip: $name: ${ex.message}")
        } finally {
            inf.end()
        }
    }

    companion object {
        private const val LOCAL_SIG = 0x04034b50L
        private const val CENTRAL_SIG = 0x02014b50L
        private const val EOCD_SIG = 0x06054b50L

        const val METADATA_JSON = "fakelens.json"
        const val LABELS_TXT = "labels.txt"

        private fun u16(b: ByteArray, o: Int) = (b[o].toInt() and 0xFF) or ((b[o + 1].toInt() and 0xFF) shl 8)
        private fun u32(b: ByteArray, o: Int): Long = (u16(b, o).toLong()) or (u16(b, o + 2).toLong() shl 16)

        /** Parses the zip at the end of [model]; throws [AssociatedFilesException] if there is none. */
        fun of(model: ByteArray): AssociatedFiles {
            // End of central directory: 22 bytes + a comment of up to 65535 bytes, at the very end.
            var eocd = -1
            var i = model.size - 22
            val lowest = maxOf(0, model.size - 22 - 0xFFFF)
            while (i >= lowest) {
                if (u32(model, i) == EOCD_SIG && i + 22 + u16(model, i + 20) == model.size) { eocd = i; break }
                i--
            }
            if (eocd < 0) {
                throw AssociatedFilesException("the model has no associated files (no zip appended) — export it with `python -m convert`, which writes the metadata")
            }
            val count = u16(model, eocd + 10)
            val cdSize = u32(model, eocd + 12)
            val cdOffset = u32(model, eocd + 16)
            if (cdOffset == 0xFFFFFFFFL || count == 0xFFFF) throw AssociatedFilesException("ZIP64 archives are not supported")
            // Offsets are absolute when the zip was appended in place (Python's zipfile "a" mode);
            // if the zip was concatenated instead they are relative to its start: shift by the gap.
            val cdStart = (eocd - cdSize).toInt()
            if (cdStart < 0) throw AssociatedFilesException("corrupt zip: central directory before the start of the file")
            val shift = cdStart - cdOffset.toInt()
            val entries = LinkedHashMap<String, Entry>()
            var p = cdStart
            repeat(count) {
                if (p + 46 > model.size || u32(model, p) != CENTRAL_SIG) throw AssociatedFilesException("corrupt zip: bad central directory entry")
                val flags = u16(model, p + 8)
                val method = u16(model, p + 10)
                val crc = u32(model, p + 16)
                val csize = u32(model, p + 20)
                val usize = u32(model, p + 24)
                val nameLen = u16(model, p + 28)
                val extraLen = u16(model, p + 30)
                val commentLen = u16(model, p + 32)
                val local = u32(model, p + 42)
                if (flags and 1 != 0) throw AssociatedFilesException("encrypted zip entries are not supported")
                if (csize > Int.MAX_VALUE || usize > Int.MAX_VALUE) throw AssociatedFilesException("zip entry too large")
                val name = String(model, p + 46, nameLen, Charsets.UTF_8)
                entries[name] = Entry(method, csize.toInt(), usize.toInt(), local.toInt() + shift, crc)
                p += 46 + nameLen + extraLen + commentLen
            }
            return AssociatedFiles(model, entries)
        }

        /** The model's fakelens.json, parsed. */
        fun modelInfo(model: ByteArray): ModelInfo {
            val text = of(model).readText(METADATA_JSON)
                ?: throw AssociatedFilesException("the model's metadata has no $METADATA_JSON — re-export it with `python -m convert`")
            return ModelInfo.parse(text)
        }
    }
}

class AssociatedFilesException(message: String) : IllegalArgumentException(message)

package fakelens.core

import java.security.MessageDigest

/** Hex sha256 of a file's bytes: the content hash the format-controlled protocol is keyed on. */
fun sha256Hex(bytes: ByteArray): String =
    MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it.toInt() and 0xFF) }

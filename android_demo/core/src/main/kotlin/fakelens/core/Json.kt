package fakelens.core

/**
 * A small, strict JSON reader (RFC 8259) for the model's `fakelens.json`, so the core needs no
 * third-party library and behaves the same on the JVM and on Android.
 *
 * Values map onto Kotlin as: object → [Map] (insertion order kept), array → [List],
 * string → [String], number → [Long] when it is an integer literal that fits, else [Double],
 * true/false → [Boolean], null → `null`.
 */
object Json {
    /** Parses [text]; throws [JsonException] naming the offset of the first problem. */
    fun parse(text: String): Any? {
        val p = Parser(text)
        p.skipWhitespace()
        val value = p.readValue(0)
        p.skipWhitespace()
        if (!p.atEnd()) p.fail("unexpected trailing content")
        return value
    }

    private const val MAX_DEPTH = 256

    private class Parser(private val s: String) {
        private var i = 0

        fun atEnd() = i >= s.length

        fun fail(message: String): Nothing = throw JsonException("$message at offset $i")

        fun skipWhitespace() {
            while (i < s.length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++
        }

        fun readValue(depth: Int): Any? {
            if (depth > MAX_DEPTH) fail("nesting deeper than $MAX_DEPTH")
            if (atEnd()) fail("unexpected end of input")
            return when (val c = s[i]) {
                '{' -> readObject(depth)
                '[' -> readArray(depth)
                '"' -> readString()
                't' -> readLiteral("true", true)
                'f' -> readLiteral("false", false)
                'n' -> readLiteral("null", null)
                else -> if (c == '-' || c in '0'..'9') readNumber() else fail("unexpected character '${c}'")
            }
        }

        private fun readLiteral(word: String, value: Any?): Any? {
            if (!s.startsWith(word, i)) fail("invalid literal")
            i += word.length
            return value
        }

        private fun readObject(depth: Int): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            i++ // {
            skipWhitespace()
            if (i < s.length && s[i] == '}') { i++; return out }
            while (true) {
                skipWhitespace()
                if (atEnd() || s[i] != '"') fail("expected a string key")
                val key = readString()
                skipWhitespace()
                if (atEnd() || s[i] != ':') fail("expected ':'")
                i++
                skipWhitespace()
                if (out.containsKey(key)) fail("duplicate key \"$key\"")
                out[key] = readValue(depth + 1)
                skipWhitespace()
                if (atEnd()) fail("unterminated object")
                when (s[i]) {
                    ',' -> i++
                    '}' -> { i++; return out }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        private fun readArray(depth: Int): List<Any?> {
            val out = ArrayList<Any?>()
            i++ // [
            skipWhitespace()
            if (i < s.length && s[i] == ']') { i++; return out }
            while (true) {
                skipWhitespace()
                out.add(readValue(depth + 1))
                skipWhitespace()
                if (atEnd()) fail("unterminated array")
                when (s[i]) {
                    ',' -> i++
                    ']' -> { i++; return out }
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        private fun readString(): String {
            i++ // opening quote
            val sb = StringBuilder()
            while (true) {
                if (atEnd()) fail("unterminated string")
                val c = s[i++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (atEnd()) fail("unterminated escape")
                        when (val e = s[i++]) {
                            '"' -> sb.append('"')
                            '\\' -> sb.append('\\')
                            '/' -> sb.append('/')
                            'b' -> sb.append('\b')
                            'f' -> sb.append('\u000C')
                            'n' -> sb.append('\n')
                            'r' -> sb.append('\r')
                            't' -> sb.append('\t')
                            'u' -> {
                                if (i + 4 > s.length) fail("short \\u escape")
                                var code = 0
                                for (k in 0 until 4) {
                                    val d = Character.digit(s[i + k], 16)
                                    if (d < 0) fail("bad hex digit in \\u escape")
                                    code = code * 16 + d
                                }
                                i += 4
                                sb.append(code.toChar()) // surrogate pairs arrive as two escapes
                            }
                            else -> fail("invalid escape '\\$e'")
                        }
                    }
                    c < ' ' -> fail("control character in string")
                    else -> sb.append(c)
                }
            }
        }

        private fun readNumber(): Any {
            val start = i
            if (s[i] == '-') i++
            if (atEnd()) fail("truncated number")
            if (s[i] == '0') {
                i++
            } else if (s[i] in '1'..'9') {
                while (i < s.length && s[i] in '0'..'9') i++
            } else fail("invalid number")
            var integral = true
            if (i < s.length && s[i] == '.') {
                integral = false
                i++
                if (atEnd() || s[i] !in '0'..'9') fail("digit expected after '.'")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            if (i < s.length && (s[i] == 'e' || s[i] == 'E')) {
                integral = false
                i++
                if (i < s.length && (s[i] == '+' || s[i] == '-')) i++
                if (atEnd() || s[i] !in '0'..'9') fail("digit expected in exponent")
                while (i < s.length && s[i] in '0'..'9') i++
            }
            val literal = s.substring(start, i)
            if (integral) literal.toLongOrNull()?.let { return it }
            return literal.toDouble()
        }
    }
}

class JsonException(message: String) : IllegalArgumentException(message)

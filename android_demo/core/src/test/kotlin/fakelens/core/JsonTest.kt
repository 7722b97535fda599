package fakelens.core

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class JsonTest {
    @Test
    fun `parses every value kind`() {
        val v = Json.parse("""{"a": [1, -2, 3.5, -0.25e1, 1E2], "b": {"c": null, "d": true, "e": false}, "s": "x"}""")
        assertEquals(
            mapOf("a" to listOf(1L, -2L, 3.5, -2.5, 100.0), "b" to mapOf("c" to null, "d" to true, "e" to false), "s" to "x"),
            v,
        )
    }

    @Test
    fun `keeps key order and handles empty containers and whitespace`() {
        val v = Json.parse(" \n\t{ \"z\" : [ ] , \"a\" : { } }\r\n") as Map<*, *>
        assertEquals(listOf("z", "a"), v.keys.toList())
        assertEquals(emptyList<Any>(), v["z"])
        assertEquals(emptyMap<String, Any>(), v["a"])
    }

    @Test
    fun `decodes string escapes including surrogate pairs`() {
        assertEquals("q\"b\\s/\b\u000c\n\r\tA\u00e9\u263a\uD83D\uDE00",
            Json.parse(""""q\"b\\s\/\b\f\n\r\t\u0041\u00e9\u263A\ud83d\ude00""""))
        assertEquals("caf\u00e9 \u263a", Json.parse("\"caf\u00e9 \u263a\"")) // raw UTF-8 text passes through
    }

    @Test
    fun `large integers fall back to double`() {
        assertEquals(9007199254740993L, Json.parse("9007199254740993"))
        assertEquals(1e30, Json.parse("1000000000000000000000000000000"))
        assertNull(Json.parse("null"))
    }

    @Test
    fun `rejects malformed documents with an offset`() {
        val bad = listOf(
            "", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "[1 2]", "01", "1.", "-", "+1", ".5", "1e",
            "\"unterminated", "\"bad \\x escape\"", "\"\\u12G4\"", "tru", "nul", "NaN", "Infinity",
            "{\"a\":1}{", "\"tab\tinside\"", "{a:1}", "{\"k\":1,\"k\":2}",
        )
        for (text in bad) {
            val e = assertThrows<JsonException>("should reject: $text") { Json.parse(text) }
            assertTrue(e.message!!.contains("offset"), e.message)
        }
    }

    @Test
    fun `rejects absurd nesting instead of overflowing the stack`() {
        assertThrows<JsonException> { Json.parse("[".repeat(100_000)) }
    }
}

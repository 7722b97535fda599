package fakelens.core

import org.junit.jupiter.api.Assertions

/**
 * Kotlin-friendly assertThrows (Debian's junit5 package ships without JUnit's Kotlin extensions).
 */
inline fun <reified T : Throwable> assertThrows(message: String = "", noinline block: () -> Unit): T =
    Assertions.assertThrows(T::class.java, { block() }, message)

// The plain-Kotlin core shared by the app: no Android API, so it is unit-tested on the JVM.
// On this project's CI it is compiled and tested without Gradle by run_tests.sh; this file is
// what Android Studio / Gradle use (./gradlew :core:test does the same checks).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
    // The javax.imageio codec is JVM-only (Android has no javax.imageio): tests only.
    sourceSets["test"].kotlin.srcDir("src/jvm/kotlin")
}

dependencies {
    testImplementation(platform(libs.junit.bom))
    testImplementation(libs.junit.jupiter)
    testRuntimeOnly(libs.junit.platform.launcher)
}

val golden = layout.buildDirectory.dir("golden")

// Golden vectors from the project's Python (set PYTHON to the venv's python).
val makeGolden by tasks.registering(Exec::class) {
    val python = providers.environmentVariable("PYTHON").getOrElse("python3")
    workingDir = rootProject.projectDir.parentFile
    environment("PYTHONPATH", rootProject.projectDir.parentFile.absolutePath)
    commandLine(python, file("make_golden.py").absolutePath, golden.get().asFile.absolutePath)
    outputs.dir(golden)
    inputs.file("make_golden.py")
}

tasks.test {
    useJUnitPlatform()
    dependsOn(makeGolden)
    systemProperty("fakelens.golden", golden.get().asFile.absolutePath)
}

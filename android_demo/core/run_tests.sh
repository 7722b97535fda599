#!/usr/bin/env bash
# JVM tests of the Android demo's Kotlin core, without Gradle or an Android SDK.
#
#   PYTHON=/work/main/.venv/bin/python android_demo/core/run_tests.sh
#
# Needs: Java 17+, the Kotlin compiler (npm install -g kotlin-compiler, or KOTLINC=/path/to/kotlinc),
# JUnit 5's console launcher (apt-get install -y junit5, or JUNIT_CONSOLE=/path/to/jar), and a
# Python with pillow, numpy and the project's `ela` package (PYTHON, default python3).
# Ends with the line "N passed, N failed"; exits non-zero if anything failed or did not run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${FAKELENS_CORE_BUILD:-$here/build}"
golden="$build/golden"
classes="$build/classes"

die() { echo "run_tests.sh: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

# --- toolchain ---------------------------------------------------------------------------------
kotlinc="${KOTLINC:-}"
if [[ -z "$kotlinc" ]]; then
    if command -v kotlinc >/dev/null 2>&1; then
        kotlinc="$(command -v kotlinc)"
    elif command -v npm >/dev/null 2>&1 && [[ -x "$(npm root -g)/kotlin-compiler/bin/kotlinc" ]]; then
        kotlinc="$(npm root -g)/kotlin-compiler/bin/kotlinc" # the npm package links only kotlinc-js onto PATH
    else
        die "no Kotlin compiler: run 'npm install -g kotlin-compiler' or set KOTLINC"
    fi
fi
kotlin_home="$(cd "$(dirname "$(readlink -f "$kotlinc")")/.." && pwd)"
stdlib="$kotlin_home/lib/kotlin-stdlib.jar"
[[ -f "$stdlib" ]] || die "kotlin-stdlib.jar not found next to $kotlinc"

junit="${JUNIT_CONSOLE:-/usr/share/java/junit-platform-console-standalone.jar}"
[[ -f "$junit" ]] || die "JUnit console launcher not found at $junit: run 'apt-get install -y junit5' or set JUNIT_CONSOLE"
command -v java >/dev/null 2>&1 || die "no java on PATH (Java 17+ needed)"

python="${PYTHON:-python3}"

# --- golden vectors from the project's Python ----------------------------------------------------
rm -rf "$golden"
mkdir -p "$golden"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$python" "$here/make_golden.py" "$golden" \
    || die "make_golden.py failed (PYTHON=$python needs pillow, numpy and the project's ela package)"

# --- compile core + JVM codec + tests in one kotlinc run ------------------------------------------
rm -rf "$classes"
mkdir -p "$classes"
echo "compiling with $kotlinc ($("$kotlinc" -version 2>&1 | tail -n 1))"
"$kotlinc" -nowarn -jvm-target 17 -cp "$junit" -d "$classes" \
    "$here/src/main/kotlin" "$here/src/jvm/kotlin" "$here/src/test/kotlin" \
    || die "compilation failed"

# --- run ---------------------------------------------------------------------------------------
log="$build/junit.log"
set +e
FAKELENS_GOLDEN="$golden" java -Dfakelens.golden="$golden" -jar "$junit" \
    --disable-banner --disable-ansi-colors --details=tree --fail-if-no-tests \
    --class-path "$classes:$stdlib" --select-package fakelens.core 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

count() { grep -E "^\[ *[0-9]+ tests $1 *\]" "$log" | grep -oE "[0-9]+" | head -n 1; }
passed="$(count successful || true)"
failed="$(count failed || true)"
skipped=$(( $(count skipped || echo 0) + $(count aborted || echo 0) )) # aborted = an assumption not met
passed="${passed:-0}"
failed="${failed:-0}"
if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi # launcher error or no tests found
[[ $skipped -eq 0 ]] || echo "$skipped skipped (see the tree above for why)"
echo "$passed passed, $failed failed"
[[ $rc -eq 0 && $failed -eq 0 && $passed -gt 0 ]]

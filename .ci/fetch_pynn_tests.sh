#!/usr/bin/env bash
# Fetch PyNN 0.13.0's own test suite (the test/ folder of its sdist on PyPI) into a
# cache directory, for tests/test_pynn_scenarios.py.
#
# Usage: .ci/fetch_pynn_tests.sh [CACHE_DIR]
#   CACHE_DIR defaults to $PYNN_TESTS_DIR, else ~/.cache/pynn_ttfs/pynn-0.13.0-tests.
#   Afterwards CACHE_DIR/test/system/scenarios/ holds the 66 scenarios.
# Idempotent: does nothing when the cache is already complete.
# Why the sdist: the wheel on PyPI does not carry test/; only the source archive does.
set -euo pipefail

PYNN_VERSION="0.13.0"
# sha256 of pynn-0.13.0.tar.gz as published on PyPI (pip also checks PyPI's hash).
SDIST_SHA256="da2821e45055a88de6cf34896067eaaebcabbfdfb7883dd147353e7b78617815"

cache_dir="${1:-${PYNN_TESTS_DIR:-$HOME/.cache/pynn_ttfs/pynn-${PYNN_VERSION}-tests}}"
marker="$cache_dir/test/system/scenarios/fixtures.py"

if [ -f "$marker" ] && [ -f "$cache_dir/.complete" ]; then
    echo "PyNN ${PYNN_VERSION} tests already in $cache_dir"
    exit 0
fi

python_bin="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python_bin" -m pip download --quiet --no-binary :all: --no-deps \
    "pynn==${PYNN_VERSION}" -d "$work"
sdist=""
for candidate in "$work"/pynn-${PYNN_VERSION}.tar.gz "$work"/PyNN-${PYNN_VERSION}.tar.gz; do
    if [ -f "$candidate" ]; then sdist="$candidate"; fi
done
if [ -z "$sdist" ]; then
    echo "error: pip did not produce the pynn ${PYNN_VERSION} sdist in $work" >&2
    exit 1
fi
actual_sha="$(sha256sum "$sdist" | cut -d' ' -f1)"
if [ "$actual_sha" != "$SDIST_SHA256" ]; then
    echo "error: sha256 of $(basename "$sdist") is $actual_sha, expected $SDIST_SHA256" >&2
    exit 1
fi

mkdir "$work/src"
tar -xzf "$sdist" -C "$work/src"
# No pipes here: with pipefail, `tar -t | head` dies of SIGPIPE.
top=""
for candidate in "$work"/src/*/; do
    if [ -f "${candidate}test/system/scenarios/fixtures.py" ]; then top="${candidate%/}"; fi
done
if [ -z "$top" ]; then
    echo "error: $(basename "$sdist") has no test/system/scenarios/" >&2
    exit 1
fi

# Assemble the cache beside its final place, then rename it into place in one step, so
# that a test run reading the cache never sees half of it (renames are atomic on one
# file system). If another run got there first, keep theirs.
parent="$(dirname "$cache_dir")"
mkdir -p "$parent"
staging="$(mktemp -d "$parent/.pynn-tests-partial.XXXXXX")"
mv "$top/test" "$staging/test"
echo "$PYNN_VERSION $SDIST_SHA256" > "$staging/.complete"
if [ -d "$cache_dir" ] && [ ! -f "$cache_dir/.complete" ]; then
    rm -rf "$cache_dir"  # an incomplete cache from an interrupted older run
fi
if ! mv -T "$staging" "$cache_dir" 2>/dev/null; then
    rm -rf "$staging"
    if [ ! -f "$cache_dir/.complete" ]; then
        echo "error: could not move the PyNN tests into $cache_dir" >&2
        exit 1
    fi
fi
echo "PyNN ${PYNN_VERSION} tests in $cache_dir/test"

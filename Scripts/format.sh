#!/usr/bin/env bash
# Formats the package's Swift files with swift-format (the toolchain's `swift format`) and the
# configuration in .swift-format; with --check, changes nothing and fails on any finding (CI).
# Left out: the Embedded Swift guests (Guests/) and their runtime (Sources/GuestBuilder/Runtime),
# whose export names (`recurse_depth`, `cf_alloc`) are the guest ABI's, and whose committed builds
# are checked against their sources.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard '*.swift' | grep -v -e '^Sources/GuestBuilder/Runtime/' -e '^Guests/')
if [[ "${1:-}" == "--check" ]]; then
    swift format lint --strict --parallel "${files[@]}"
    echo "swift-format: ${#files[@]} files, no finding"
else
    swift format format --in-place --parallel "${files[@]}"
fi

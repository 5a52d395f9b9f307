#!/usr/bin/env bash
# Rebuilds the bundled guest modules, Sources/BundledGuests/Modules/{Tasks,Examples,faults}.wasm,
# from Guests/ with `futures build-guest`, so that the bundled bytes are exactly what the
# documented command produces. SwiftPM embeds them in the BundledGuests module (`.embedInCode`),
# as it embeds the guest runtime (Sources/GuestBuilder/Runtime) in the futures tool: nothing
# else is generated. Run it after changing anything under Guests/ or the runtime, then commit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

swift build --product futures >/dev/null
futures="$(swift build --product futures --show-bin-path)/futures"
out=Sources/BundledGuests/Modules
"$futures" build-guest Guests/Tasks.swift -o "$out/Tasks.wasm" --no-runtime --stack-size 16384
"$futures" build-guest Guests/Examples.swift -o "$out/Examples.wasm"
"$futures" build-guest Guests/c/faults.c -o "$out/faults.wasm"
echo "rebuilt $out/Tasks.wasm, $out/Examples.wasm and $out/faults.wasm"

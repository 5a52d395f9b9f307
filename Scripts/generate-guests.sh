#!/usr/bin/env bash
# Rebuilds the bundled guest modules, Sources/BundledGuests/Modules/*.wasm,
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
"$futures" build-guest Guests/plugin/plugin.c -o "$out/plugin-c.wasm"
"$futures" build-guest Guests/plugin/plugin.swift -o "$out/plugin-swift.wasm"
echo "rebuilt $out/Tasks.wasm, $out/Examples.wasm, $out/faults.wasm, $out/plugin-c.wasm and $out/plugin-swift.wasm"

# The WASI guests need wasi-libc and clang 14:
#     apt-get install wasi-libc clang-14 lld-14 libclang-rt-14-dev-wasm32
"$futures" build-guest --wasi reactor Guests/Tasks.swift -o "$out/TasksWASI.wasm" --no-runtime --stack-size 16384
"$futures" build-guest --wasi reactor Guests/wasi/probe.c -o "$out/probe.wasm"
"$futures" build-guest --wasi command Guests/wasi/wordstat.c -o "$out/wordstat.wasm"
"$futures" build-guest --wasi reactor Guests/wasi/wordstat.c -o "$out/wordstat-reactor.wasm"
echo "rebuilt $out/TasksWASI.wasm, $out/probe.wasm, $out/wordstat.wasm and $out/wordstat-reactor.wasm"

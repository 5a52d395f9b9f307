#!/usr/bin/env bash
# Builds the ConcurrentFutures WebAssembly guests into Guests/build/:
#   Tasks.wasm     Embedded Swift, no runtime, no imports (the benchmark guest)
#   Examples.wasm  Embedded Swift + Runtime/GuestRuntime.swift + Runtime/rt.c
#   faults.wasm    C (c/faults.c) + Runtime/rt.c
#
# Needs a Swift toolchain with Embedded Swift and the wasm32 target (6.x): swiftc, clang
# and wasm-ld. Set SWIFT_BIN to its bin directory (default: /opt/swift/usr/bin if present,
# else whatever is on PATH). Usage: Guests/build.sh [--verbose]
#
# Flags:
#   swiftc  -target wasm32-unknown-none-wasm   freestanding wasm32, no WASI
#           -enable-experimental-feature Embedded / Extern   Embedded Swift; @_extern(wasm|c)
#           -wmo -parse-as-library -O          one optimized module, no top-level code
#           -Xfrontend -disable-stack-protector  no __stack_chk_guard to provide
#   clang   --target=wasm32 -O2 -ffreestanding -nostdlib   (bulk memory is on by default, so
#           memcpy/memset become memory.copy/memory.fill)
#   wasm-ld --no-entry                         a library of exports, no _start
#           --gc-sections                      drop unused code, and with it unused imports
#           --stack-first, -z stack-size=N     the shadow stack comes first in memory (at 0..N),
#                                              so overflowing it traps instead of corrupting data
# Memory is exported as "memory" (wasm-ld's default); no maximum is set, so the host's
# limits decide how far the guest may grow.

set -euo pipefail
[[ "${1:-}" == "--verbose" ]] && set -x

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -z "${SWIFT_BIN:-}" && -x /opt/swift/usr/bin/swiftc ]]; then SWIFT_BIN=/opt/swift/usr/bin; fi
tool() { if [[ -n "${SWIFT_BIN:-}" ]]; then echo "$SWIFT_BIN/$1"; else command -v "$1" || { echo "build.sh: $1 not found (set SWIFT_BIN)" >&2; exit 1; }; fi; }
SWIFTC="$(tool swiftc)"; CLANG="$(tool clang)"; WASM_LD="$(tool wasm-ld)"

out="$here/build"
obj="$out/obj"
mkdir -p "$obj"

swift_flags=(-target wasm32-unknown-none-wasm
    -enable-experimental-feature Embedded -enable-experimental-feature Extern
    -wmo -parse-as-library -O -Xfrontend -disable-stack-protector)
c_flags=(--target=wasm32 -O2 -ffreestanding -nostdlib -Wall -Wextra -Werror -I "$here/Runtime")
ld_flags=(--no-entry --gc-sections --stack-first)

# Unicode tables are needed only by Unicode-aware String APIs (uppercased(), ...); link
# the archive when the toolchain has it, and --gc-sections drops it when unused.
unicode_tables="$(dirname "$SWIFTC")/../lib/swift/embedded/wasm32-unknown-none-wasm/libswiftUnicodeDataTables.a"
extra_libs=()
[[ -f "$unicode_tables" ]] && extra_libs+=("$unicode_tables")

# Runtime, shared by Examples.wasm and faults.wasm.
"$CLANG" "${c_flags[@]}" -c "$here/Runtime/rt.c" -o "$obj/rt.o"

# Tasks.wasm: no runtime; 16 KiB stack; everything fits in one 64 KiB page.
"$SWIFTC" "${swift_flags[@]}" -module-name Tasks "$here/Tasks.swift" -c -o "$obj/Tasks.o"
"$WASM_LD" "${ld_flags[@]}" -z stack-size=16384 "$obj/Tasks.o" -o "$out/Tasks.wasm"

# Examples.wasm: guest code + Swift runtime + rt.c; 64 KiB stack.
"$SWIFTC" "${swift_flags[@]}" -module-name Examples \
    "$here/Runtime/GuestRuntime.swift" "$here/Examples.swift" -c -o "$obj/Examples.o"
"$WASM_LD" "${ld_flags[@]}" -z stack-size=65536 "$obj/Examples.o" "$obj/rt.o" "${extra_libs[@]}" \
    -o "$out/Examples.wasm"

# faults.wasm: C guest + rt.c; 64 KiB stack.
"$CLANG" "${c_flags[@]}" -c "$here/c/faults.c" -o "$obj/faults.o"
"$WASM_LD" "${ld_flags[@]}" -z stack-size=65536 "$obj/faults.o" "$obj/rt.o" -o "$out/faults.wasm"

# Drop the producers/target_features custom sections (metadata nobody reads at run time);
# the "name" section stays so traps can name the guest functions.
OBJCOPY="$(dirname "$WASM_LD")/llvm-objcopy"
if [[ -x "$OBJCOPY" ]]; then
    for m in Tasks Examples faults; do
        "$OBJCOPY" --remove-section=producers --remove-section=target_features "$out/$m.wasm"
    done
fi

# Guard the ABI: a guest may import only from module "cf", and Tasks.wasm nothing at all.
if command -v python3 >/dev/null; then
    python3 "$here/tools/wasminfo.py" --quiet --no-imports "$out/Tasks.wasm"
    python3 "$here/tools/wasminfo.py" --quiet --imports-from cf "$out/Examples.wasm" "$out/faults.wasm"
fi

ls -l "$out"/*.wasm

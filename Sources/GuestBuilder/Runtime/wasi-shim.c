// wasi-shim.c: what the Embedded Swift guest runtime (EmbeddedGuestRuntime.swift) needs from C, for a
// guest linked with wasi-libc instead of this project's rt.c: the heap is wasi-libc's malloc,
// standard output is WASI's.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void *cf_heap_alloc(size_t n) { return malloc(n); }
void cf_heap_free(void *p) { free(p); }
void cf_flush_stdout(void) { fflush(stdout); }
__attribute__((noreturn)) void cf_trap(void) { __builtin_trap(); }
int32_t cf_memory_pages(void) { return (int32_t)__builtin_wasm_memory_size(0); }
int32_t cf_memory_grow(int32_t pages) { return (int32_t)__builtin_wasm_memory_grow(0, pages); }
int64_t cf_div_s64(int64_t a, int64_t b) { return a / b; }

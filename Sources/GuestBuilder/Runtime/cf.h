// cf.h: the ConcurrentFutures guest ABI (v1) for C guests.
//
// Declares the host imports (module "cf"), the allocator exports the host
// needs to pass string/bytes/array arguments, and small helpers. Link with
// rt.c (malloc/free/memcpy...). Exactly one C file of a module should
//     #define CF_IMPLEMENTATION
//     #include "cf.h"
// to define the `cf_alloc`/`cf_free` exports.
//
// Arguments arrive as wasm params: int -> int64_t, double -> double,
// bool/none/queue -> int32_t, string/bytes/array -> (const uint8_t *ptr, int32_t len).
// A call's result is the last cf_return_* made during the call, else the
// function's own wasm result.

#ifndef CF_GUEST_H
#define CF_GUEST_H

#include <stddef.h>
#include <stdint.h>

#define CF_EXPORT(name) __attribute__((export_name(name)))
#define CF_IMPORT(name) __attribute__((import_module("cf"), import_name(name)))

// Status codes returned by queue imports. A bad pointer is not a status: the
// host aborts the call with an error (ExecutionFailed .invalidPointer).
enum {
    CF_OK = 0,             // done
    CF_EMPTY_OR_FULL = 1,  // timed out: queue stayed empty (get) or full (put)
    CF_NO_QUEUE = 2,       // no such queue (queues are never closed; one disappears
                           // when every handle to it is gone)
    CF_BAD_VALUE = 3,      // bad value: queue_put got bytes that are not one encoded
                           // value, or a get took an item the host could not hand to
                           // the guest (the item is consumed)
    CF_NOT_INT = 4,        // queue_get_int: the item is not an int (it stays in the queue)
};
#define CF_FOREVER ((int64_t)-1)   // timeout_ms: block until done
#define CF_NO_WAIT ((int64_t)0)    // timeout_ms: do not wait

// Value tags of the binary encoding (one tag byte, then the payload).
enum {
    CF_TAG_NONE = 0x00, CF_TAG_FALSE = 0x01, CF_TAG_TRUE = 0x02, CF_TAG_INT = 0x03 /* SLEB128 */,
    CF_TAG_DOUBLE = 0x04 /* 8 bytes LE */, CF_TAG_STRING = 0x05 /* ULEB128 len + UTF-8 */,
    CF_TAG_BYTES = 0x06 /* ULEB128 len + bytes */, CF_TAG_ARRAY = 0x07 /* ULEB128 count + values */,
    CF_TAG_QUEUE = 0x08 /* ULEB128 id */,
};

// --- Host imports ----------------------------------------------------------
CF_IMPORT("return_value")  void cf_return_value(const void *ptr, int32_t len);   // encoded value
CF_IMPORT("return_string") void cf_return_string(const void *ptr, int32_t len);  // UTF-8
CF_IMPORT("return_bytes")  void cf_return_bytes(const void *ptr, int32_t len);
CF_IMPORT("queue_put_int") int32_t cf_queue_put_int(int32_t queue, int64_t value, int64_t timeout_ms);
CF_IMPORT("queue_get_int") int32_t cf_queue_get_int(int32_t queue, int64_t timeout_ms, int64_t *out);
CF_IMPORT("queue_put")     int32_t cf_queue_put(int32_t queue, const void *ptr, int32_t len, int64_t timeout_ms);
// On CF_OK the host stored {ptr, len} (allocated with cf_alloc; free it with free()) at out.
CF_IMPORT("queue_get")     int32_t cf_queue_get(int32_t queue, int64_t timeout_ms, int32_t out[2]);
CF_IMPORT("queue_count")   int64_t cf_queue_count(int32_t queue);                // < 0: unknown queue
CF_IMPORT("write")         int32_t cf_write(int32_t fd, const void *ptr, int32_t len);
CF_IMPORT("log")           void cf_log(const void *ptr, int32_t len);            // one line to stderr
CF_IMPORT("interpreter_id") int64_t cf_interpreter_id(void);                     // id of the interpreter running the call

// --- Provided by rt.c (a WASI guest: by wasi-libc and this header) ----------
void *malloc(size_t n);
void free(void *p);
void *memcpy(void *restrict d, const void *restrict s, size_t n);
size_t strlen(const char *s);
#ifdef __wasi__
// A WASI guest links wasi-libc instead of rt.c, so these are defined here.
#include <stdio.h>
static inline void cf_flush_stdout(void) { fflush(stdout); }
__attribute__((noreturn)) static inline void cf_trap(void) { __builtin_trap(); }  // `unreachable`
static inline int32_t cf_memory_pages(void) { return (int32_t)__builtin_wasm_memory_size(0); }
static inline int32_t cf_memory_grow(int32_t pages) {                             // old size in pages, or -1
    return (int32_t)__builtin_wasm_memory_grow(0, pages);
}
#else
void cf_flush_stdout(void);
__attribute__((noreturn)) void cf_trap(void);   // `unreachable`: the call fails with GuestError .unreachable
int32_t cf_memory_pages(void);
int32_t cf_memory_grow(int32_t pages);
#endif

// --- Exports the host calls to place pointer arguments ---------------------
CF_EXPORT("cf_alloc") void *cf_alloc(int32_t size);
CF_EXPORT("cf_free") void cf_free(void *ptr);

// --- Helpers ---------------------------------------------------------------
static inline void cf_log_str(const char *msg) { cf_log(msg, (int32_t)strlen(msg)); }
static inline void cf_return_cstring(const char *s) { cf_return_string(s, (int32_t)strlen(s)); }
static inline void cf_print(const char *s) { cf_write(1, s, (int32_t)strlen(s)); }

#ifdef CF_IMPLEMENTATION
void *cf_alloc(int32_t size) { return size < 0 ? 0 : malloc(size ? (size_t)size : 1); }
void cf_free(void *ptr) { free(ptr); }
#endif

#endif // CF_GUEST_H

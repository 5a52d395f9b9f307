// rt.c: a tiny freestanding C runtime for ConcurrentFutures WebAssembly guests.
//
// It supplies what Embedded Swift (and small C guests) expect from libc on
// wasm32-unknown-none: an allocator, the mem*/str* primitives, arc4random_buf,
// a line-buffered putchar that writes through the host's `cf.write` import,
// __multi3, and a few wasm intrinsics Swift cannot spell (trap, memory.grow,
// raw i64.div_s). Link with `wasm-ld --gc-sections`: whatever a module does not
// use is dropped, including the `cf.write` import when putchar is unused.
//
// Build: clang --target=wasm32 -O2 -ffreestanding -nostdlib -c rt.c -o rt.o

#include <stddef.h>
#include <stdint.h>

#define NO_LIBCALLS __attribute__((no_builtin)) // keep clang from turning loops back into memcpy()/strlen() calls

// ---------------------------------------------------------------------------
// Allocator: power-of-two size classes (16 B .. 32 KiB) with per-class free
// lists; larger blocks are multiples of 4 KiB on a best-fit free list. Fresh
// blocks are carved from a bump region that starts at __heap_base and is
// extended with memory.grow in chunks of GROW_CHUNK_PAGES. Every block has a
// 16-byte header, so payloads stay 16-byte aligned. There is no coalescing:
// guests are short-lived, and the free lists absorb the steady state.

#define PAGE_SIZE 65536u
#define GROW_CHUNK_PAGES 16u        // grow 1 MiB at a time (less if that fails)
#define NUM_CLASSES 12              // 16 << 11 == 32 KiB
#define MAX_SMALL (16u << (NUM_CLASSES - 1))
#define LARGE_GRAIN 4096u
#define MAX_ALLOC 0x7fff0000u       // refuse absurd sizes before any arithmetic can overflow
#define TAG_USED 0xCF0B10C5u        // header.tag of a live block
#define TAG_FREE 0xCF0F4EE5u        // header.tag of a block on a free list
#define TAG_ALIGNED 0xCF0A1160u     // header in front of an over-aligned pointer; size = distance back to the real block

typedef struct header {
    uint32_t size;  // payload capacity in bytes (or the back offset for TAG_ALIGNED)
    uint32_t tag;
    uint32_t pad[2];
} header_t;

typedef struct free_block { struct free_block *next; } free_block_t;

extern unsigned char __heap_base;   // provided by wasm-ld: first byte after data and stack

static uintptr_t bump, bump_end;    // [bump, bump_end) is untouched heap
static free_block_t *small_free[NUM_CLASSES];
static free_block_t *large_free;

static inline header_t *header_of(void *p) { return (header_t *)p - 1; }

static unsigned size_class(size_t n) {
    return n <= 16 ? 0 : (unsigned)(32 - __builtin_clz((uint32_t)n - 1)) - 4;
}

// Makes sure [bump, bump + need) is usable memory, growing linear memory if needed.
static int reserve(size_t need) {
    uintptr_t mem_end = (uintptr_t)__builtin_wasm_memory_size(0) * PAGE_SIZE;
    if (bump_end != mem_end) {
        // First use, or someone else called memory.grow: continue at the end of memory
        // (the pages grown by others are theirs; any old bump tail is simply abandoned).
        if (bump_end == 0) bump = ((uintptr_t)&__heap_base + 15) & ~(uintptr_t)15;
        else bump = mem_end;
        bump_end = mem_end;
    }
    if (bump_end - bump >= need) return 1;
    size_t pages = (need - (bump_end - bump) + PAGE_SIZE - 1) / PAGE_SIZE;
    size_t chunk = pages < GROW_CHUNK_PAGES ? GROW_CHUNK_PAGES : pages;
    if (__builtin_wasm_memory_grow(0, chunk) == (size_t)-1) {
        if (chunk == pages || __builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
        chunk = pages;
    }
    bump_end += chunk * PAGE_SIZE;
    return 1;
}

static void *carve(size_t size) {
    if (!reserve(size + sizeof(header_t))) return 0;
    header_t *h = (header_t *)bump;
    bump += size + sizeof(header_t);
    h->size = (uint32_t)size;
    h->tag = TAG_USED;
    return h + 1;
}

void *malloc(size_t n) {
    if (n > MAX_ALLOC) return 0;
    if (n <= MAX_SMALL) {
        unsigned c = size_class(n);
        free_block_t *b = small_free[c];
        if (!b) return carve((size_t)16 << c);
        small_free[c] = b->next;
        header_of(b)->tag = TAG_USED;
        return b;
    }
    size_t size = (n + LARGE_GRAIN - 1) & ~(size_t)(LARGE_GRAIN - 1);
    free_block_t **best = 0;
    for (free_block_t **link = &large_free; *link; link = &(*link)->next) {
        uint32_t s = header_of(*link)->size;
        if (s >= size && (!best || s < header_of(*best)->size)) best = link;
    }
    if (!best) return carve(size);
    free_block_t *b = *best;
    *best = b->next;
    header_t *h = header_of(b);
    h->tag = TAG_USED;
    size_t rest = h->size - size;   // split off the tail if it is itself a large block
    if (rest > MAX_SMALL + sizeof(header_t)) {
        header_t *t = (header_t *)((char *)b + size);
        t->size = (uint32_t)(rest - sizeof(header_t));
        t->tag = TAG_FREE;
        ((free_block_t *)(t + 1))->next = large_free;
        large_free = (free_block_t *)(t + 1);
        h->size = (uint32_t)size;
    }
    return b;
}

// Finds the real block behind p (undoing posix_memalign's offset); traps on foreign pointers.
static header_t *checked_block(void **p) {
    header_t *h = header_of(*p);
    if (h->tag == TAG_ALIGNED) {
        *p = (char *)*p - h->size;
        h = header_of(*p);
    }
    if (h->tag != TAG_USED) __builtin_trap();   // double free or not from malloc
    return h;
}

void free(void *p) {
    if (!p) return;
    header_t *h = checked_block(&p);
    h->tag = TAG_FREE;
    free_block_t *b = p;
    if (h->size <= MAX_SMALL) {
        unsigned c = size_class(h->size);
        b->next = small_free[c];
        small_free[c] = b;
    } else {
        b->next = large_free;
        large_free = b;
    }
}

// The same, under names Swift may import (it reserves "malloc" and "free").
void *cf_heap_alloc(size_t n) { return malloc(n); }
void cf_heap_free(void *p) { free(p); }

int posix_memalign(void **out, size_t align, size_t n) {
    if (align < sizeof(void *) || (align & (align - 1))) return 22;   // EINVAL
    if (align <= 16) {
        *out = malloc(n);
        return *out ? 0 : 12;   // ENOMEM
    }
    if (n > MAX_ALLOC - align) return 12;
    char *raw = malloc(n + align);
    if (!raw) return 12;
    uintptr_t p = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    if (p != (uintptr_t)raw) {   // p - raw >= 16, so there is room for a back-pointing header
        header_t *h = header_of((void *)p);
        h->size = (uint32_t)(p - (uintptr_t)raw);
        h->tag = TAG_ALIGNED;
    }
    *out = (void *)p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n) {
    void *p;
    return posix_memalign(&p, align, n) ? 0 : p;
}

void *calloc(size_t count, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) return 0;
    void *p = malloc(n);
    return p ? __builtin_memset(p, 0, n) : 0;
}

void *realloc(void *p, size_t n) {
    if (!p) return malloc(n);
    if (n == 0) { free(p); return 0; }
    void *base = p;
    header_t *h = checked_block(&base);
    size_t capacity = h->size - (size_t)((char *)p - (char *)base);
    if (n <= capacity) return p;
    void *q = malloc(n);
    if (!q) return 0;
    __builtin_memcpy(q, p, capacity);
    free(p);
    return q;
}

// ---------------------------------------------------------------------------
// Memory and string primitives. With bulk memory (clang's default for wasm32),
// the __builtin_mem* calls below compile to single memory.copy/memory.fill
// instructions, which an interpreter executes natively.

NO_LIBCALLS void *memcpy(void *restrict d, const void *restrict s, size_t n) {
#ifdef __wasm_bulk_memory__
    return __builtin_memcpy(d, s, n);
#else
    unsigned char *dp = d; const unsigned char *sp = s;
    while (n--) *dp++ = *sp++;
    return d;
#endif
}

NO_LIBCALLS void *memmove(void *d, const void *s, size_t n) {
#ifdef __wasm_bulk_memory__
    return __builtin_memmove(d, s, n);
#else
    unsigned char *dp = d; const unsigned char *sp = s;
    if (dp < sp) while (n--) *dp++ = *sp++;
    else while (n--) dp[n] = sp[n];
    return d;
#endif
}

NO_LIBCALLS void *memset(void *d, int c, size_t n) {
#ifdef __wasm_bulk_memory__
    return __builtin_memset(d, c, n);
#else
    unsigned char *dp = d;
    while (n--) *dp++ = (unsigned char)c;
    return d;
#endif
}

NO_LIBCALLS int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

NO_LIBCALLS size_t strlen(const char *s) {
    const char *e = s;
    while (*e) e++;
    return (size_t)(e - s);
}

// Deterministic randomness (SplitMix64): Embedded Swift only uses it to seed
// hashing, and reproducible guests are a feature here.
void arc4random_buf(void *buf, size_t n) {
    static uint64_t state = 0x0123456789ABCDEFull;
    unsigned char *p = buf;
    while (n) {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        for (int i = 0; i < 8 && n; i++, n--, z >>= 8) *p++ = (unsigned char)z;
    }
}

// ---------------------------------------------------------------------------
// stdout: putchar (used by Swift's print) buffers a line and hands it to the
// host with cf.write(1, ...). The import is referenced only from here, so
// modules that never print do not import it.

__attribute__((import_module("cf"), import_name("write")))
int cf_write(int fd, const void *ptr, int len);

static unsigned char out_buf[256];
static unsigned out_len;

void cf_flush_stdout(void) {
    if (out_len) cf_write(1, out_buf, (int)out_len);
    out_len = 0;
}

int putchar(int c) {
    out_buf[out_len++] = (unsigned char)c;
    if (c == '\n' || out_len == sizeof out_buf) cf_flush_stdout();
    return (unsigned char)c;
}

// ---------------------------------------------------------------------------
// __multi3: 128-bit multiply (low 128 bits), which LLVM calls for Swift's
// multipliedFullWidth and similar. wasm32 has no compiler-rt in the toolchain.
// Written with 64-bit halves so it cannot lower to a call to itself.

typedef union { __int128 all; struct { uint64_t lo, hi; } s; } u128_t;

static uint64_t mul_hi64(uint64_t a, uint64_t b) {
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

__int128 __multi3(__int128 a, __int128 b) {
    u128_t x = {.all = a}, y = {.all = b}, r;
    r.s.lo = x.s.lo * y.s.lo;
    r.s.hi = mul_hi64(x.s.lo, y.s.lo) + x.s.lo * y.s.hi + x.s.hi * y.s.lo;
    return r.all;
}

// ---------------------------------------------------------------------------
// wasm intrinsics for Swift code, which has no spelling for these instructions.

__attribute__((noreturn)) void cf_trap(void) { __builtin_trap(); }          // `unreachable`
int32_t cf_memory_pages(void) { return (int32_t)__builtin_wasm_memory_size(0); }
int32_t cf_memory_grow(int32_t pages) {                                      // old size in pages, or -1
    return (int32_t)__builtin_wasm_memory_grow(0, (size_t)(uint32_t)pages);
}
// A raw i64.div_s: traps with "integer divide by zero" (or overflow on INT64_MIN / -1)
// exactly like the instruction; Swift's `/` would check first and trap with `unreachable`.
__attribute__((noinline)) int64_t cf_div_s64(int64_t a, int64_t b) { return a / b; }

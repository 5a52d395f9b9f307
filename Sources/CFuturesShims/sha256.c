// SHA-256 (FIPS 180-4) for the compiled engine's cache keys and entry digests. In C, in this shim:
// swift-crypto brings Foundation, which the statically linked worker program cannot link.
//
// Every load of a compiled guest hashes its whole entry (a large program's is tens of MB), so on
// x86-64 processors with the SHA extensions the blocks go through those instructions (about 5x the
// portable code here); the portable code serves everywhere else, and the tests compare the two.
#include <stdbool.h>
#include <string.h>
#include "CFuturesShims.h"
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t cf_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define CF_ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void cf_sha256_block(cf_sha256_state *state, const uint8_t *block) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = CF_ROTR(w[i - 15], 7) ^ CF_ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = CF_ROTR(w[i - 2], 17) ^ CF_ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state->h[0], b = state->h[1], c = state->h[2], d = state->h[3];
    uint32_t e = state->h[4], f = state->h[5], g = state->h[6], h = state->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (CF_ROTR(e, 6) ^ CF_ROTR(e, 11) ^ CF_ROTR(e, 25)) + ((e & f) ^ (~e & g)) + cf_sha256_k[i] + w[i];
        uint32_t t2 = (CF_ROTR(a, 2) ^ CF_ROTR(a, 13) ^ CF_ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    state->h[0] += a; state->h[1] += b; state->h[2] += c; state->h[3] += d;
    state->h[4] += e; state->h[5] += f; state->h[6] += g; state->h[7] += h;
}

#if defined(__x86_64__)
// Four rounds at a time: the state lives as ABEF and CDGH, as the instructions want it, and each
// group's four message words are derived from the previous four groups' (FIPS 180-4, 6.2.2 step 1).
__attribute__((target("sha,sse4.1,ssse3")))
static void cf_sha256_blocks_x86(cf_sha256_state *state, const uint8_t *data, size_t blocks) {
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i dcba = _mm_loadu_si128((const __m128i *)&state->h[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&state->h[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
    for (; blocks > 0; blocks--, data += 64) {
        const __m128i abef_before = abef, cdgh_before = cdgh;
        __m128i words[4];
        for (int group = 0; group < 16; group++) {
            __m128i *slot = &words[group & 3];
            if (group < 4) {
                *slot = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * group)), byte_swap);
            } else {
                // words[group & 3] still holds group - 4; the others hold group - 3, -2 and -1.
                __m128i older = _mm_sha256msg1_epu32(*slot, words[(group - 3) & 3]);
                older = _mm_add_epi32(older, _mm_alignr_epi8(words[(group - 1) & 3], words[(group - 2) & 3], 4));
                *slot = _mm_sha256msg2_epu32(older, words[(group - 1) & 3]);
            }
            __m128i scheduled = _mm_add_epi32(*slot, _mm_loadu_si128((const __m128i *)&cf_sha256_k[4 * group]));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, scheduled);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(scheduled, 0x0E));
        }
        abef = _mm_add_epi32(abef, abef_before);
        cdgh = _mm_add_epi32(cdgh, cdgh_before);
    }
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&state->h[0], _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)&state->h[4], _mm_alignr_epi8(dchg, feba, 8));
}

static bool cf_sha256_x86_supported(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    const bool ssse3 = ecx & (1u << 9), sse41 = ecx & (1u << 19);
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    return ssse3 && sse41 && (ebx & (1u << 29));
}
#endif

// 1 when the SHA extensions are used, 0 when not, -1 before the first use decides (racing first
// uses decide the same).
static int cf_sha256_accelerated = -1;

static void cf_sha256_blocks(cf_sha256_state *state, const uint8_t *data, size_t blocks) {
#if defined(__x86_64__)
    int accelerated = __atomic_load_n(&cf_sha256_accelerated, __ATOMIC_RELAXED);
    if (accelerated < 0) {
        accelerated = cf_sha256_x86_supported();
        __atomic_store_n(&cf_sha256_accelerated, accelerated, __ATOMIC_RELAXED);
    }
    if (accelerated) {
        cf_sha256_blocks_x86(state, data, blocks);
        return;
    }
#endif
    for (; blocks > 0; blocks--, data += 64) cf_sha256_block(state, data);
}

bool cf_sha256_use_accelerated(bool enabled) {
#if defined(__x86_64__)
    const bool supported = cf_sha256_x86_supported();
    __atomic_store_n(&cf_sha256_accelerated, enabled && supported, __ATOMIC_RELAXED);
    return supported;
#else
    (void)enabled;
    return false;
#endif
}

void cf_sha256_init(cf_sha256_state *state) {
    static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(state->h, initial, sizeof initial);
    state->length = 0;
    state->used = 0;
}

void cf_sha256_update(cf_sha256_state *state, const void *bytes, size_t count) {
    const uint8_t *cursor = bytes;
    state->length += count;
    if (state->used > 0) {
        size_t take = 64 - state->used < count ? 64 - state->used : count;
        memcpy(state->buffer + state->used, cursor, take);
        state->used += (uint32_t)take;
        cursor += take;
        count -= take;
        if (state->used < 64) return;
        cf_sha256_blocks(state, state->buffer, 1);
        state->used = 0;
    }
    cf_sha256_blocks(state, cursor, count / 64);
    cursor += count / 64 * 64;
    count %= 64;
    memcpy(state->buffer, cursor, count);
    state->used = (uint32_t)count;
}

void cf_sha256_final(cf_sha256_state *state, uint8_t digest[32]) {
    uint64_t bits = state->length * 8;
    uint8_t pad = 0x80;
    cf_sha256_update(state, &pad, 1);
    uint8_t zero = 0;
    while (state->used != 56) cf_sha256_update(state, &zero, 1);
    uint8_t length[8];
    for (int i = 0; i < 8; i++) length[i] = (uint8_t)(bits >> (56 - 8 * i));
    cf_sha256_update(state, length, 8);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(state->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(state->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(state->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)state->h[i];
    }
}

// SHA-256 (FIPS 180-4) for the compiled engine's cache keys and entry digests. In C, in this shim:
// swift-crypto brings Foundation, which the statically linked worker program cannot link.
#include <string.h>
#include "CFuturesShims.h"

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
        cf_sha256_block(state, state->buffer);
        state->used = 0;
    }
    for (; count >= 64; cursor += 64, count -= 64) cf_sha256_block(state, cursor);
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

import CFuturesShims

/// SHA-256, for the compiled engine's cache keys and entry digests: a compiled guest is native
/// code, so its entry is named and checked by a digest no other module or file can be made to
/// share. (The C implementation in `CFuturesShims`, see `sha256.c`.)
struct SHA256 {
    private var state = cf_sha256_state()

    init() { cf_sha256_init(&state) }

    /// Adds `bytes` to the digest.
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        cf_sha256_update(&state, bytes.baseAddress, bytes.count)
    }

    /// Adds `bytes` to the digest.
    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest, as 64 hex digits.
    mutating func finish() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        cf_sha256_final(&state, &digest)
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

import CFuturesShims
import Testing

@testable import WasmInterpreters

/// The cache's digests: the processor's SHA instructions and the portable code must agree.
@Suite("SHA-256", .serialized)
struct SHA256Tests {
    private static func digest(_ bytes: [UInt8], piece: Int) -> String {
        var hash = SHA256()
        var start = 0
        repeat {
            let end = min(bytes.count, start + piece)
            hash.update(Array(bytes[start..<end]))
            start = end
        } while start < bytes.count
        return hash.finish()
    }

    /// Both ways, whatever the processor: FIPS 180-4's examples, then random inputs of every length
    /// around the block boundaries, fed whole and in uneven pieces.
    @Test func theSHAInstructionsAndThePortableCodeAgree() {
        defer { _ = cf_sha256_use_accelerated(true) }
        var random = SplitMix(state: 256)
        let inputs: [[UInt8]] =
            (0..<300).map { count in (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) } }
            + [(0..<(1 << 20) + 13).map { _ in UInt8.random(in: 0...255, using: &random) }]
        var results: [[String]] = []
        for accelerated in [false, true] {
            _ = cf_sha256_use_accelerated(accelerated)
            #expect(Self.digest(Array("abc".utf8), piece: 64) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            #expect(
                Self.digest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8), piece: 7)
                    == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
            #expect(
                Self.digest([UInt8](repeating: 0x61, count: 1_000_000), piece: 4099)
                    == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
            results.append(inputs.flatMap { [Self.digest($0, piece: 1 << 30), Self.digest($0, piece: 37)] })
        }
        #expect(results[0] == results[1])
        #expect(Set(results[0]).count == inputs.count)
    }
}

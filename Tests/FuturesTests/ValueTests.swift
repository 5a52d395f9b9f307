import TestSupport
import Testing

@testable import ConcurrentFutures

struct Point: Codable, Shareable, Equatable {
    var x: Int
    var y: Double
    var label: String?
    var tags: [String]
}

@Suite("ShareableValue")
struct ValueTests {
    @Test(arguments: [
        ShareableValue.none, .bool(true), .bool(false), .int(0), .int(-1), .int(.max), .int(.min), .int(624_485),
        .double(1.5), .double(-.infinity), .string(""), .string("héllo ✓"), .bytes([0, 255, 7]),
        .array([]), .array([1, "two", [3.0, nil], .queue(4)]), .queue(12_345),
    ])
    func binaryRoundTrip(value: ShareableValue) throws {
        #expect(try ShareableValue(decoding: value.encoded()) == value)
    }

    @Test func knownEncodings() {
        #expect(ShareableValue.int(-2).encoded() == [0x03, 0x7e])
        #expect(ShareableValue.int(624_485).encoded() == [0x03, 0xe5, 0x8e, 0x26])
        #expect(ShareableValue.string("hi").encoded() == [0x05, 2, 0x68, 0x69])
        #expect(ShareableValue.array([.none, .bool(true)]).encoded() == [0x07, 2, 0x00, 0x02])
    }

    @Test func malformedBytesAreRejectedWithATypedError() {
        let cases: [[UInt8]] = [
            [], [0x09], [0x05, 5, 0x61], [0x07, 3, 0x00], [0x05, 2, 0xff, 0xfe], [0x03],
            [0x00, 0x00], [0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            Array(repeating: 0x07, count: 400) + [1, 0],
        ]
        for bytes in cases {
            #expect(throws: ValueCodingError.self) { try ShareableValue(decoding: bytes) }
        }
    }

    @Test func randomBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        var decoded = 0
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0..<24, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if (try? ShareableValue(decoding: bytes)) != nil { decoded += 1 }
        }
        #expect(decoded < 20_000)
    }

    @Test func codableValuesCrossAsDocumentedTrees() throws {
        let point = Point(x: 1, y: 2.5, label: nil, tags: ["a"])
        let value = try point.shareableValue
        #expect(value == ["x", 1, "y", 2.5, "tags", ["a"]], "synthesized Codable skips nil optionals")
        #expect(try Point(shareableValue: value) == point)
        #expect(try Point(shareableValue: ShareableValue(decoding: value.encoded())) == point)
        #expect(!Point.isNativelyShareable)
    }

    @Test func natives() throws {
        #expect(try [UInt8]([1, 2]).shareableValue == .bytes([1, 2]))
        #expect(try [UInt8](shareableValue: .bytes([3])) == [3])
        #expect(try [1, 2].shareableValue == [1, 2])
        #expect(try Int?.none.shareableValue == .none)
        #expect(try Int8(shareableValue: 100) == 100)
        #expect(throws: ValueCodingError.self) { try Int8(shareableValue: 300) }
        #expect(throws: ValueCodingError.self) { try String(shareableValue: 1) }
    }

    @Test func isShareableIsAboutTheType() {
        #expect(isShareable(1))
        #expect(isShareable("text"))
        #expect(isShareable([1, 2, 3]))
        #expect(isShareable(ShareableValue.none))
        #expect(!isShareable(Point(x: 0, y: 0, label: nil, tags: [])))
        #expect(!isShareable({ 1 }))
        #expect(!isShareable(Counter()))
    }
}

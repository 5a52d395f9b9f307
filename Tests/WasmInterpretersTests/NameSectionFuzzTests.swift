import Testing
import WasmParser

@testable import WasmInterpreters

/// The load-time check of `name` sections reads them in place; WasmKit's parser (which builds
/// strings) is the reference it must agree with, on valid sections and on every mutation of them.
@Suite("Name section check")
struct NameSectionFuzzTests {
    /// WasmKit's verdict: parses, and no function name at or past `functionCount`.
    private static func reference(_ bytes: [UInt8], functionCount: Int) -> Bool {
        var parser = NameSectionParser(stream: StaticByteStreamSource(bytes: bytes[...]))
        guard let names = try? parser.parseAll() else { return false }
        for case .functions(let map) in names where map.keys.contains(where: { Int($0) >= functionCount }) {
            return false
        }
        return true
    }

    private static func leb(_ value: UInt32) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        repeat {
            let byte = UInt8(value & 0x7f)
            value >>= 7
            bytes.append(value == 0 ? byte : byte | 0x80)
        } while value != 0
        return bytes
    }

    private static func name(_ text: [UInt8]) -> [UInt8] { leb(UInt32(text.count)) + text }

    /// A well-formed section: a module name, function names, local names, and an unknown subsection.
    private static func section(using generator: inout SplitMix) -> [UInt8] {
        let alphabet: [[UInt8]] = [Array("f".utf8), Array("_ZN4core3fmt5write17h".utf8), Array("é€𝄞".utf8), []]
        func randomName() -> [UInt8] { alphabet[Int(generator.next() % 4)] + Array(String(generator.next() % 1000).utf8) }
        func map(count: Int, limit: UInt32) -> [UInt8] {
            leb(UInt32(count)) + (0..<count).flatMap { _ in leb(UInt32(generator.next() % UInt64(limit))) + name(randomName()) }
        }
        var bytes: [UInt8] = []
        func subsection(_ id: UInt8, _ payload: [UInt8]) { bytes += [id] + leb(UInt32(payload.count)) + payload }
        subsection(0, name(randomName()))
        subsection(1, map(count: Int(generator.next() % 6), limit: 12))
        subsection(2, leb(2) + leb(0) + map(count: 2, limit: 4) + leb(3) + map(count: 1, limit: 4))
        subsection(7, map(count: 3, limit: 50))
        subsection(42, [1, 2, 3])
        return bytes
    }

    @Test func theInPlaceCheckAgreesWithWasmKitsParserOnValidAndMutatedSections() {
        var generator = SplitMix(state: 734)
        var accepted = 0
        var refused = 0
        for round in 0..<3000 {
            var bytes = Self.section(using: &generator)
            if round % 4 != 0 {
                // One to three mutations: a changed byte, a cut, or an inserted byte.
                for _ in 0...(generator.next() % 3) {
                    let at = Int(generator.next() % UInt64(bytes.count))
                    switch generator.next() % 3 {
                    case 0: bytes[at] = UInt8(truncatingIfNeeded: generator.next())
                    case 1: bytes.removeSubrange(at...)
                    default: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: at)
                    }
                    if bytes.isEmpty { break }
                }
            }
            let functionCount = Int(generator.next() % 14)
            let expected = Self.reference(bytes, functionCount: functionCount)
            #expect(
                ModuleStructure.isValidNameSection(bytes[...], functionCount: functionCount) == expected,
                "round \(round): \(bytes)")
            if expected { accepted += 1 } else { refused += 1 }
        }
        #expect(accepted > 300 && refused > 300, "both verdicts exercised: \(accepted) accepted, \(refused) refused")
    }
}

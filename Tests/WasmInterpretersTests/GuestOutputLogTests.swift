import Testing

@testable import WasmInterpreters

/// The log destination of guests' output (``WASIOptions/OutputDestination/log``) logs a call's
/// output line by line, at most 100 lines per stream and call, and counts the rest.
@Suite("Guest output, logged")
struct GuestOutputLogTests {
    @Test func aFloodOfLinesIsBoundedAndCounted() {
        let (lines, more) = GuestOutputRouting.lines(Array(String(repeating: "x\n", count: 5000).utf8))
        #expect(lines.count == GuestOutputRouting.maxLoggedLines)
        #expect(lines.allSatisfy { $0 == "x" })
        #expect(more == 4900)
    }

    @Test func aLastLineWithoutNewlineIsALine() {
        let (lines, more) = GuestOutputRouting.lines(Array("one\ntwo".utf8))
        #expect(lines == ["one", "two"])
        #expect(more == 0)
    }
}

@preconcurrency import Foundation

/// Reads lines from a file or standard input, one at a time, as they come.
///
/// A line is bytes up to `\n`, with a trailing `\r` removed (CRLF input). A line holding a
/// NUL byte or bytes that are not UTF-8 is refused on its own; the others go on.
final class LineReader: @unchecked Sendable {
    private let file: UnsafeMutablePointer<FILE>
    /// The input file, or `nil` for standard input.
    let path: String?

    struct BadLine: Error, CustomStringConvertible {
        let description: String
    }

    init(path: String?) throws {
        self.path = path == "-" ? nil : path
        if let path = self.path {
            guard let file = fopen(path, "r") else { throw CommandFailure("cannot read input file \(path)") }
            self.file = file
        } else {
            file = stdin
        }
    }

    deinit { if path != nil { fclose(file) } }

    /// The next line, `.failure` for a line that cannot be text, or `nil` at the end.
    func next() -> Result<String, BadLine>? {
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        let length = getline(&line, &capacity, file)
        guard length >= 0, let line else { return nil }
        var bytes = UnsafeRawBufferPointer(start: line, count: length)
        if bytes.last == 0x0A { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
        if bytes.last == 0x0D { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
        if bytes.contains(0) { return .failure(BadLine(description: "the line contains a NUL byte")) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(BadLine(description: "the line is not UTF-8 text"))
        }
        return .success(text)
    }
}

@preconcurrency import Foundation

/// Writes `line` and a newline to standard error.
func writeError(_ line: String) {
    writeStandardErrorRaw(line + "\n")
}

/// Writes `text` to standard error as it is.
func writeStandardErrorRaw(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

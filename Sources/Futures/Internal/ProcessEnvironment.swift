#if canImport(Glibc)
import Glibc
#endif

/// This process's environment, read from `environ` (for the children it starts).
package enum ProcessEnvironment {
    /// Every variable as `NAME=value`, in `environ`'s order.
    package static var entries: [String] {
        var entries: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            entries.append(String(cString: entry))
            cursor += 1
        }
        return entries
    }

    /// Every variable by name.
    package static var current: [String: String] {
        var result: [String: String] = [:]
        for text in entries {
            guard let equals = text.firstIndex(of: "=") else { continue }
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return result
    }
}

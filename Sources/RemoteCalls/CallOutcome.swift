package import Futures

/// What one call came to, as it travels back: `[17, value]` or `[18, error]` (the error as
/// ``RemoteErrorCoding`` writes it; docs/wire.md).
package struct CallOutcome: Sendable {
    package static let successTag: Int64 = 17
    package static let failureTag: Int64 = 18

    package var result: Result<ShareableValue, any Error>

    package init(_ result: Result<ShareableValue, any Error>) { self.result = result }

    /// Reads an outcome.
    ///
    /// - Throws: ``Futures/ValueCodingError`` `.malformed` for what is not one.
    package init(wire: ShareableValue) throws(ValueCodingError) {
        guard case .array(let fields) = wire, fields.count == 2, case .int(let tag) = fields[0] else {
            throw ValueCodingError(.malformed, "not an outcome: \(wire)")
        }
        switch tag {
        case Self.successTag: result = .success(fields[1])
        case Self.failureTag: result = .failure(RemoteErrorCoding.error(wire: fields[1]))
        default: throw ValueCodingError(.malformed, "unknown outcome tag \(tag)")
        }
    }

    /// The outcome as sent.
    package var wire: ShareableValue {
        switch result {
        case .success(let value): [.int(Self.successTag), value]
        case .failure(let error): [.int(Self.failureTag), RemoteErrorCoding.wire(error)]
        }
    }
}

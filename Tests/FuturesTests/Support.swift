import Dispatch
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import ConcurrentFutures
import TestSupport

func expectCode(_ code: ExecutorError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected \(code), nothing thrown", sourceLocation: sourceLocation)
    } catch let error as ExecutorError {
        #expect(error.code == code, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}

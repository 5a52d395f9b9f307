import Dispatch
import Synchronization
import TestSupport
import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

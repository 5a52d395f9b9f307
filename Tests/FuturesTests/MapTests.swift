import Synchronization
import TestSupport
import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

/// A sequence that counts how many elements were taken from it.
struct CountingSequence: Sequence {
    let limit: Int?
    let taken: Counter

    func makeIterator() -> AnyIterator<Int> {
        var next = 0
        return AnyIterator {
            if let limit, next >= limit { return nil }
            defer { next += 1 }
            taken.increment()
            return next
        }
    }
}

@Suite("PoolExecutor.map")
struct MapTests {
    @Test func resultsComeInInputOrder() throws {
        try ThreadPoolExecutor(maxWorkers: 4).run { pool throws in
            let results = try pool.map(Array(0..<200)) { value -> Int in
                if value % 7 == 0 { usleep(500) }
                return value * value
            }
            #expect(try results.collect() == (0..<200).map { $0 * $0 })
        }
    }

    @Test func withoutBufferSizeEveryInputIsSubmittedBeforeMapReturns() throws {
        try ThreadPoolExecutor(maxWorkers: 2).run { pool throws in
            let taken = Counter()
            let results = try pool.map(CountingSequence(limit: 50, taken: taken)) { $0 }
            #expect(taken.count == 50)
            #expect(try results.collect().count == 50)
        }
    }

    @Test func bufferSizeKeepsAWindowAndHandlesInfiniteInput() throws {
        try ThreadPoolExecutor(maxWorkers: 2).run { pool throws in
            let taken = Counter()
            let results = try pool.map(CountingSequence(limit: nil, taken: taken), bufferSize: 3) { $0 * 2 }
            #expect(taken.count == 3)
            var iterator = results.makeIterator()
            #expect(try iterator.next()?.get() == 0)
            #expect(taken.count == 4)
            var collected: [Int] = []
            while collected.count < 100, let next = iterator.next() { collected.append(try next.get()) }
            #expect(collected == (1...100).map { $0 * 2 })
            #expect(taken.count <= 104)
        }
    }

    @Test func invalidBufferSizeIsRejectedAtOnce() throws {
        try ThreadPoolExecutor(maxWorkers: 1).run { pool throws in
            expectCode(.invalidArgument) { _ = try pool.map([1], bufferSize: 0) { $0 } }
            expectCode(.invalidArgument) { _ = try pool.map([1], bufferSize: -1) { $0 } }
        }
    }

    @Test func aFailureEndsTheMapAndCancelsWhatHasNotStarted() throws {
        let gate = Gate()
        try ThreadPoolExecutor(maxWorkers: 1).run { pool throws in
            let started = Counter()
            let results = try pool.map(0..<20) { value -> Int in
                started.increment()
                if value == 0 { throw Boom(id: 0) }
                gate.wait()  // value 1 holds the only worker while the failure is seen
                return value
            }
            var outcomes = Array(results)
            gate.open()
            #expect(outcomes.count == 1)
            #expect(throws: Boom(id: 0)) { try outcomes.removeFirst().get() }
            pool.shutdown()
            #expect(started.count <= 2, "the queued calls were cancelled")
        }
    }

    @Test func timeoutIsMeasuredFromTheCallAndCancelsTheRest() throws {
        let gate = Gate()
        try ThreadPoolExecutor(maxWorkers: 1).run { pool throws in
            let ran = Counter()
            let results = try pool.map(0..<5, timeout: .milliseconds(50)) { value -> Int in
                ran.increment()
                if value == 1 { gate.wait() }
                return value
            }
            var iterator = results.makeIterator()
            #expect(try iterator.next()?.get() == 0)
            let secondOutcome = iterator.next()
            let second = try #require(secondOutcome)
            #expect(throws: ExecutorError.self) { try second.get() }
            if case .failure(let error as ExecutorError) = second { #expect(error.code == .timedOut) }
            #expect(iterator.next() == nil)
            gate.open()
            pool.shutdown()
            #expect(ran.count == 2, "the calls after the timed-out one were cancelled")
        }
    }

    @Test func stoppingEarlyCancelsTheRest() throws {
        let gate = Gate()
        try ThreadPoolExecutor(maxWorkers: 1).run { pool throws in
            let ran = Counter()
            do {
                let results = try pool.map(0..<10) { value -> Int in
                    ran.increment()
                    if value == 1 { gate.wait() }
                    return value
                }
                for result in results {
                    #expect(try result.get() == 0)
                    break
                }
            }
            gate.open()
            pool.shutdown()
            #expect(ran.count <= 2, "dropping the iterator cancelled the queued calls")
        }
    }

    @Test func asyncValuesComeInOrder() async throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 3)
        var collected: [Int] = []
        for try await value in try pool.map(0..<50, bufferSize: 4, { $0 + 1 }).values {
            collected.append(value)
        }
        #expect(collected == Array(1...50))
        await pool.shutdown()
    }

    @Test func asyncValuesRethrowTheFirstFailure() async throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 2)
        var collected: [Int] = []
        do {
            for try await value in try pool.map(
                0..<10,
                { value -> Int in
                    if value == 3 { throw Boom(id: 3) }
                    return value
                }
            ).values {
                collected.append(value)
            }
            Issue.record("no error")
        } catch let error as Boom {
            #expect(error == Boom(id: 3))
        }
        #expect(collected == [0, 1, 2])
        await pool.shutdown()
    }

    /// Python submits every input of an unbuffered map before `map` returns, and the work runs
    /// even when the results are never read.
    @Test func droppingUnreadResultsCancelsNothing() throws {
        let ran = Counter()
        try ThreadPoolExecutor(maxWorkers: 2).run { pool throws in
            _ = try pool.map(0..<20) { value -> Int in
                usleep(1000)
                ran.increment()
                return value
            }
            let iterated = try pool.map(0..<20) { value -> Int in
                ran.increment()
                return value
            }
            _ = iterated.makeIterator()  // made, never advanced: still not started
        }
        #expect(ran.count == 40)
        // With a buffer, dropping the results cancels the window not yet started.
        let gate = Gate()
        let buffered = Counter()
        try ThreadPoolExecutor(maxWorkers: 1).run { pool throws in
            _ = try pool.map(0..<5, bufferSize: 3) { value -> Int in
                if value == 0 { gate.wait() }
                buffered.increment()
                return value
            }
            gate.open()
        }
        #expect(buffered.count <= 1)
    }

    /// Results are released as they are yielded: a long map keeps only what is not yet consumed.
    @Test func consumedResultsAreReleased() throws {
        let alive = Counter()
        final class Tracked: Sendable {
            let alive: Counter
            init(_ alive: Counter) {
                self.alive = alive
                alive.increment()
            }
            deinit { alive.decrement() }
        }
        try ThreadPoolExecutor(maxWorkers: 2).run { pool throws in
            var iterator = try pool.map(0..<1000) { _ in Tracked(alive) }.makeIterator()
            for _ in 0..<900 { _ = try iterator.next()?.get() }
            pool.shutdown()
            #expect(alive.count <= 100, "\(alive.count) results alive after 900 of 1,000 were consumed")
        }
    }
}

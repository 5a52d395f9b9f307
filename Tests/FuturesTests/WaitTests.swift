import Dispatch
import Testing

@testable import ConcurrentFutures
import TestSupport

@Suite("wait and asCompleted")
struct WaitTests {
    @Test func emptyWaitReturnsAtOnce() {
        let result = wait([Future<Int>]())
        #expect(result.done.isEmpty && result.notDone.isEmpty)
    }

    @Test func firstCompletedReturnsWhenOneIsDone() throws {
        let slow = Future<Int>()
        let fast = Future<Int>()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { try? fast.setResult(1) }
        let result = wait([slow, fast, fast], timeout: .seconds(5), returnWhen: .firstCompleted)
        #expect(result.done == [fast])
        #expect(result.notDone == [slow])
    }

    @Test func firstErrorWaitsForAnErrorOrForAll() throws {
        let ok = Future<Int>()
        let failing = Future<Int>()
        let pending = Future<Int>()
        try ok.setResult(1)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { try? failing.setError(Boom(id: 1)) }
        let result = wait([ok, failing, pending], timeout: .seconds(5), returnWhen: .firstError)
        #expect(result.done == [ok, failing])
        #expect(result.notDone == [pending])

        let a = Future<Int>()
        let b = Future<Int>()
        try a.setResult(1)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { try? b.setResult(2) }
        let all = wait([a, b], timeout: .seconds(5), returnWhen: .firstError)
        #expect(all.done == [a, b])
    }

    @Test func allCompletedAndTimeoutReturnThePartition() throws {
        let done = Future<Int>()
        try done.setResult(0)
        let never = Future<Int>()
        let result = wait([done, never], timeout: .milliseconds(30))
        #expect(result.done == [done])
        #expect(result.notDone == [never])
    }

    @Test func cancelledFuturesCountAsDone() throws {
        let cancelled = Future<Int>()
        cancelled.cancel()
        let result = wait([cancelled], timeout: .seconds(1))
        #expect(result.done == [cancelled])

        let gate = Gate()
        let pool = try ThreadPoolExecutor(maxWorkers: 1)
        let running = try pool.submit { gate.wait() }
        gate.awaitArrivals(1)
        let queued = try pool.submit { 1 }
        let waiting = DispatchQueue.global()
        let observed = Future<Int>()
        waiting.async {
            let outcome = wait([queued], timeout: .seconds(5))
            try? observed.setResult(outcome.done.count)
        }
        pool.shutdown(wait: false, cancelFutures: true)
        #expect(try observed.result(timeout: .seconds(5)) == 1)
        gate.open()
        _ = try running.result(timeout: .seconds(5))
        pool.shutdown()
    }

    @Test func asyncWaitFollowsTheSameRules() async throws {
        let a = Future<Int>()
        let b = Future<Int>()
        // A Dispatch timer, not a sleeping task: sibling tests may keep the cooperative pool busy.
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { try? a.setError(Boom(id: 4)) }
        let first = await wait([a, b], timeout: .seconds(5), returnWhen: .firstError)
        #expect(first.done == [a])
        let timedOut = await wait([b], timeout: .milliseconds(20))
        #expect(timedOut.notDone == [b])
    }

    @Test func asCompletedYieldsDoneFirstThenInCompletionOrder() throws {
        let futures = (0..<4).map { _ in Future<Int>() }
        try futures[2].setResult(2)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) {
            try? futures[3].setResult(3)
            DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) {
                futures[0].cancel()
                try? futures[1].setResult(1)
            }
        }
        let order = try asCompleted(futures + [futures[2]], timeout: .seconds(5)).map { try $0.get() }
        #expect(order == [futures[2], futures[3], futures[0], futures[1]])
    }

    @Test func asCompletedTimeoutSaysHowManyAreUnfinished() throws {
        let futures = (0..<4).map { _ in Future<Int>() }
        try futures[0].setResult(0)
        try futures[1].setResult(1)
        var yielded: [Future<Int>] = []
        var failure: ExecutorError?
        for outcome in asCompleted(futures, timeout: .milliseconds(30)) {
            switch outcome {
            case .success(let future): yielded.append(future)
            case .failure(let error): failure = error as? ExecutorError
            }
        }
        #expect(yielded == [futures[0], futures[1]])
        #expect(failure?.code == .timedOut)
        #expect(failure?.message == "2 (of 4) futures unfinished")
    }

    @Test func asyncAsCompletedYieldsEveryFutureOnce() async throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 4)
        let futures = try (0..<20).map { value in try pool.submit { value } }
        var seen: [Int] = []
        for try await future in asCompleted(futures + futures, timeout: .seconds(10)).values {
            seen.append(try await future.result(timeout: .zero))
        }
        #expect(seen.sorted() == Array(0..<20))
        await pool.shutdown()
    }

    @Test func asyncAsCompletedTimesOut() async throws {
        let never = Future<Int>()
        await #expect(throws: ExecutorError.self) {
            for try await _ in asCompleted([never], timeout: .milliseconds(20)).values {}
        }
    }
}

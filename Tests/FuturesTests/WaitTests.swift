import Dispatch
import TestSupport
import Testing

@testable import ConcurrentFutures

@Suite("wait and asCompleted")
struct WaitTests {
    @Test func emptyWaitReturnsAtOnce() {
        let result = wait([Future<Int>]())
        #expect(result.done.isEmpty && result.notDone.isEmpty)
    }

    @Test func firstCompletedReturnsWhenOneIsDone() throws {
        let slowPromise = Promise<Int>()
        let slow = slowPromise.future
        let fastPromise = Promise<Int>()
        let fast = fastPromise.future
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { try? fastPromise.setResult(1) }
        let result = wait([slow, fast, fast], timeout: .seconds(5), returnWhen: .firstCompleted)
        #expect(result.done == [fast])
        #expect(result.notDone == [slow])
    }

    @Test func firstErrorWaitsForAnErrorOrForAll() throws {
        let okPromise = Promise<Int>()
        let ok = okPromise.future
        let failingPromise = Promise<Int>()
        let failing = failingPromise.future
        let pendingPromise = Promise<Int>()
        let pending = pendingPromise.future
        try okPromise.setResult(1)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { try? failingPromise.setError(Boom(id: 1)) }
        let result = wait([ok, failing, pending], timeout: .seconds(5), returnWhen: .firstError)
        #expect(result.done == [ok, failing])
        #expect(result.notDone == [pending])

        let aPromise = Promise<Int>()

        let a = aPromise.future
        let bPromise = Promise<Int>()
        let b = bPromise.future
        try aPromise.setResult(1)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { try? bPromise.setResult(2) }
        let all = wait([a, b], timeout: .seconds(5), returnWhen: .firstError)
        #expect(all.done == [a, b])
    }

    @Test func allCompletedAndTimeoutReturnThePartition() throws {
        let donePromise = Promise<Int>()
        let done = donePromise.future
        try donePromise.setResult(0)
        let neverPromise = Promise<Int>()
        let never = neverPromise.future
        let result = wait([done, never], timeout: .milliseconds(30))
        #expect(result.done == [done])
        #expect(result.notDone == [never])
    }

    @Test func cancelledFuturesCountAsDone() throws {
        let cancelledPromise = Promise<Int>()
        let cancelled = cancelledPromise.future
        cancelled.cancel()
        let result = wait([cancelled], timeout: .seconds(1))
        #expect(result.done == [cancelled])

        let gate = Gate()
        let pool = try ThreadPoolExecutor(maxWorkers: 1)
        let running = try pool.submit { gate.wait() }
        gate.awaitArrivals(1)
        let queued = try pool.submit { 1 }
        let waiting = DispatchQueue.global()
        let observedPromise = Promise<Int>()
        let observed = observedPromise.future
        waiting.async {
            let outcome = wait([queued], timeout: .seconds(5))
            try? observedPromise.setResult(outcome.done.count)
        }
        pool.shutdown(wait: false, cancelFutures: true)
        #expect(try observed.result(timeout: .seconds(5)) == 1)
        gate.open()
        _ = try running.result(timeout: .seconds(5))
        pool.shutdown()
    }

    @Test func asyncWaitFollowsTheSameRules() async throws {
        let aPromise = Promise<Int>()
        let a = aPromise.future
        let bPromise = Promise<Int>()
        let b = bPromise.future
        // A Dispatch timer, not a sleeping task: sibling tests may keep the cooperative pool busy.
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { try? aPromise.setError(Boom(id: 4)) }
        let first = await wait([a, b], timeout: .seconds(5), returnWhen: .firstError)
        #expect(first.done == [a])
        let timedOut = await wait([b], timeout: .milliseconds(20))
        #expect(timedOut.notDone == [b])
    }

    @Test func asCompletedYieldsDoneFirstThenInCompletionOrder() throws {
        let promises = (0..<4).map { _ in Promise<Int>() }
        let futures = promises.map(\.future)
        try promises[2].setResult(2)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) {
            try? promises[3].setResult(3)
            DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) {
                futures[0].cancel()
                try? promises[1].setResult(1)
            }
        }
        let order = try asCompleted(futures + [futures[2]], timeout: .seconds(5)).map { try $0.get() }
        #expect(order == [futures[2], futures[3], futures[0], futures[1]])
    }

    @Test func asCompletedTimeoutSaysHowManyAreUnfinished() throws {
        let promises = (0..<4).map { _ in Promise<Int>() }
        let futures = promises.map(\.future)
        try promises[0].setResult(0)
        try promises[1].setResult(1)
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
        let neverPromise = Promise<Int>()
        let never = neverPromise.future
        await #expect(throws: ExecutorError.self) {
            for try await _ in asCompleted([never], timeout: .milliseconds(20)).values {}
        }
    }
}

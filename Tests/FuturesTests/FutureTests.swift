import Dispatch
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import ConcurrentFutures
import TestSupport

@Suite("Future")
struct FutureTests {
    @Test func startsPendingAndCancelsOnce() {
        let future = Future<Int>()
        #expect(future.state == .pending)
        #expect(!future.isDone)
        let calls = Counter()
        future.addDoneCallback { _ in calls.increment() }
        #expect(future.cancel())
        #expect(future.isCancelled && future.isDone && !future.isRunning)
        #expect(future.cancel(), "cancelling again reports true")
        #expect(calls.count == 1, "callbacks run once")
        expectCode(.cancelled) { _ = try future.result() }
        expectCode(.cancelled) { _ = try future.exception() }
    }

    @Test func runningAndFinishedFuturesCannotBeCancelled() throws {
        let future = Future<Int>()
        #expect(try future.setRunningOrNotifyCancel())
        #expect(future.isRunning)
        #expect(!future.cancel())
        try future.setResult(7)
        #expect(!future.cancel())
        #expect(try future.result() == 7)
        #expect(try future.exception() == nil)
        #expect(future.state == .finished)
    }

    @Test func storedErrorIsRethrownWithItsType() throws {
        let future = Future<Int>()
        try future.setError(Boom(id: 3))
        #expect(throws: Boom(id: 3)) { try future.result() }
        #expect(try future.exception() as? Boom == Boom(id: 3))
    }

    @Test func secondResolutionIsRejectedAndFirstKept() throws {
        let future = Future<String>()
        try future.setResult("first")
        expectCode(.invalidState) { try future.setResult("second") }
        expectCode(.invalidState) { try future.setError(Boom(id: 1)) }
        expectCode(.invalidState) { _ = try future.setRunningOrNotifyCancel() }
        #expect(try future.result() == "first")
    }

    @Test func cancelledFutureIsNotRunAndCannotBeResolved() throws {
        let future = Future<Int>()
        future.cancel()
        #expect(try future.setRunningOrNotifyCancel() == false)
        expectCode(.invalidState) { try future.setResult(1) }
        #expect(future.isCancelled)
    }

    @Test func resultTimesOutWithoutCancelling() {
        let future = Future<Int>()
        expectCode(.timedOut) { _ = try future.result(timeout: .milliseconds(30)) }
        expectCode(.timedOut) { _ = try future.result(timeout: .zero) }
        #expect(future.state == .pending)
    }

    @Test func resultWakesWhenResolvedFromAnotherThread() throws {
        let future = Future<Int>()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { try? future.setResult(42) }
        #expect(try future.result(timeout: .seconds(5)) == 42)
    }

    @Test func doneCallbackRunsAtOnceInCallersThreadWhenDone() throws {
        let future = Future<Int>()
        try future.setResult(1)
        let me = pthread_self()
        let ranHere = Recorder<Bool>()
        future.addDoneCallback { _ in ranHere.append(pthread_equal(pthread_self(), me) != 0) }
        #expect(ranHere.all == [true])
    }

    @Test func callbacksRunInOrderAndAThrowingOneDoesNotStopOthers() throws {
        let future = Future<Int>()
        let order = Recorder<Int>()
        future.addDoneCallback { _ in order.append(1) }
        future.addDoneCallback { _ in
            order.append(2)
            throw Boom(id: 2)
        }
        future.addDoneCallback { future in order.append(try future.result() * 10) }
        try future.setResult(3)
        #expect(order.all == [1, 2, 30])
    }

    @Test func descriptionNamesStateAndOutcome() throws {
        let future = Future<Int>()
        #expect(future.description == "Future<Int>(state: pending)")
        try future.setError(Boom(id: 0))
        #expect(future.description == "Future<Int>(state: finished, raised Boom)")
    }

    @Test func asyncValueAndTimeouts() async throws {
        let future = Future<Int>()
        Task.detached {
            try await Task.sleep(for: .milliseconds(20))
            try future.setResult(5)
        }
        #expect(try await future.value == 5)
        let pending = Future<Int>()
        await #expect(throws: ExecutorError.self) { try await pending.result(timeout: .milliseconds(20)) }
        #expect(pending.state == .pending)
        try pending.setError(Boom(id: 9))
        #expect(try await pending.exception(timeout: .seconds(1)) as? Boom == Boom(id: 9))
    }

    @Test func taskCancellationCancelsAPendingFuture() async throws {
        let future = Future<Int>()
        let waiter = Task { try await future.value }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        let outcome = await waiter.result
        #expect(future.isCancelled)
        #expect(throws: ExecutorError.cancelled) { try outcome.get() }
    }

    @Test func taskCancellationLeavesARunningFutureAlone() async throws {
        let future = Future<Int>()
        _ = try future.setRunningOrNotifyCancel()
        let waiter = Task { try await future.value }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        try await Task.sleep(for: .milliseconds(20))
        #expect(future.isRunning)
        try future.setResult(11)
        #expect(try await waiter.value == 11)
    }
}

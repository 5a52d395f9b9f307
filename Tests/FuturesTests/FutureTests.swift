import Dispatch
import TestSupport
import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

@Suite("Future")
struct FutureTests {
    @Test func startsPendingAndCancelsOnce() {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
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
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        #expect(try futurePromise.setRunningOrNotifyCancel())
        #expect(future.isRunning)
        #expect(!future.cancel())
        try futurePromise.setResult(7)
        #expect(!future.cancel())
        #expect(try future.result() == 7)
        #expect(try future.exception() == nil)
        #expect(future.state == .finished)
    }

    @Test func storedErrorIsRethrownWithItsType() throws {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        try futurePromise.setError(Boom(id: 3))
        #expect(throws: Boom(id: 3)) { try future.result() }
        #expect(try future.exception() as? Boom == Boom(id: 3))
    }

    @Test func secondResolutionIsRejectedAndFirstKept() throws {
        let futurePromise = Promise<String>()
        let future = futurePromise.future
        try futurePromise.setResult("first")
        expectCode(.invalidState) { try futurePromise.setResult("second") }
        expectCode(.invalidState) { try futurePromise.setError(Boom(id: 1)) }
        expectCode(.invalidState) { _ = try futurePromise.setRunningOrNotifyCancel() }
        #expect(try future.result() == "first")
    }

    @Test func cancelledFutureIsNotRunAndCannotBeResolved() throws {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        future.cancel()
        #expect(try futurePromise.setRunningOrNotifyCancel() == false)
        expectCode(.invalidState) { try futurePromise.setResult(1) }
        #expect(future.isCancelled)
    }

    @Test func resultTimesOutWithoutCancelling() {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        expectCode(.timedOut) { _ = try future.result(timeout: .milliseconds(30)) }
        expectCode(.timedOut) { _ = try future.result(timeout: .zero) }
        #expect(future.state == .pending)
    }

    @Test func resultWakesWhenResolvedFromAnotherThread() throws {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { try? futurePromise.setResult(42) }
        #expect(try future.result(timeout: .seconds(5)) == 42)
    }

    @Test func doneCallbackRunsAtOnceInCallersThreadWhenDone() throws {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        try futurePromise.setResult(1)
        let me = pthread_self()
        let ranHere = Recorder<Bool>()
        future.addDoneCallback { _ in ranHere.append(pthread_equal(pthread_self(), me) != 0) }
        #expect(ranHere.all == [true])
    }

    @Test func callbacksRunInOrderAndAThrowingOneDoesNotStopOthers() throws {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        let order = Recorder<Int>()
        future.addDoneCallback { _ in order.append(1) }
        future.addDoneCallback { _ in
            order.append(2)
            throw Boom(id: 2)
        }
        future.addDoneCallback { future in order.append(try future.result() * 10) }
        try futurePromise.setResult(3)
        #expect(order.all == [1, 2, 30])
    }

    @Test func descriptionNamesStateAndOutcome() throws {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        #expect(future.description == "Future<Int>(state: pending)")
        try futurePromise.setError(Boom(id: 0))
        #expect(future.description == "Future<Int>(state: finished, raised Boom)")
    }

    @Test func asyncValueAndTimeouts() async throws {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        Task.detached {
            try await Task.sleep(for: .milliseconds(20))
            try futurePromise.setResult(5)
        }
        #expect(try await future.value == 5)
        let pendingPromise = Promise<Int>()
        let pending = pendingPromise.future
        await #expect(throws: ExecutorError.self) { try await pending.result(timeout: .milliseconds(20)) }
        #expect(pending.state == .pending)
        try pendingPromise.setError(Boom(id: 9))
        #expect(try await pending.exception(timeout: .seconds(1)) as? Boom == Boom(id: 9))
    }

    @Test func taskCancellationCancelsAPendingFuture() async throws {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        let waiter = Task { try await future.value }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        let outcome = await waiter.result
        #expect(future.isCancelled)
        #expect(throws: ExecutorError.cancelled) { try outcome.get() }
    }

    @Test func taskCancellationLeavesARunningFutureAlone() async throws {
        let futurePromise = Promise<Int>()
        let future = futurePromise.future
        _ = try futurePromise.setRunningOrNotifyCancel()
        let waiter = Task { try await future.value }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        try await Task.sleep(for: .milliseconds(20))
        #expect(future.isRunning)
        try futurePromise.setResult(11)
        #expect(try await waiter.value == 11)
    }
}

import Dispatch
import TestSupport
import Testing

@testable import ConcurrentFutures

@Suite("Queue")
struct QueueTests {
    @Test func fifoCountsAndNowaitErrors() throws {
        let queue = Interpreters.createQueue(maxSize: 2)
        #expect(queue.isEmpty && !queue.isFull && queue.count == 0)
        try queue.putNowait(1)
        try queue.putNowait("two")
        #expect(queue.isFull && queue.count == 2)
        #expect(throws: QueueFullError(queueID: queue.id)) { try queue.putNowait(3) }
        #expect(try queue.getNowait() == 1)
        #expect(try queue.getNowait() == "two")
        #expect(throws: QueueEmptyError(queueID: queue.id)) { try queue.getNowait() }
        let unbounded = Interpreters.createQueue()
        for value in 0..<1000 { try unbounded.putNowait(value) }
        #expect(!unbounded.isFull)
        #expect(try (0..<1000).map { _ in try unbounded.get(as: Int.self) } == Array(0..<1000))
    }

    @Test func timeoutsReallyWait() throws {
        let queue = Interpreters.createQueue(maxSize: 1)
        let start = Deadline.now
        #expect(throws: QueueEmptyError.self) { try queue.get(timeout: .milliseconds(200)) }
        #expect(Deadline.now.nanoseconds - start.nanoseconds >= 200_000_000, "a 0.2 s timeout waits 0.2 s")
        try queue.put(1)
        let again = Deadline.now
        #expect(throws: QueueFullError.self) { try queue.put(2, timeout: .milliseconds(200)) }
        #expect(Deadline.now.nanoseconds - again.nanoseconds >= 200_000_000)
    }

    @Test func getBlocksUntilAPut() throws {
        let queue = Interpreters.createQueue()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { try? queue.put(42) }
        #expect(try queue.get(timeout: .seconds(10)) == 42)
    }

    @Test func twoProducersTwoConsumers() throws {
        let queue = Interpreters.createQueue(maxSize: 8)
        let received = [Recorder<Int>(), Recorder<Int>()]
        runOnThreads(4) { role in
            if role < 2 {
                for index in 0..<500 { try! queue.put(role * 1000 + index, timeout: .seconds(10)) }
            } else {
                for _ in 0..<500 { received[role - 2].append(try! queue.get(as: Int.self, timeout: .seconds(10))) }
            }
        }
        let all = received.flatMap(\.all)
        #expect(all.sorted() == (Array(0..<500) + Array(1000..<1500)).sorted())
        for recorder in received {
            for producer in 0..<2 {
                let mine = recorder.all.filter { $0 / 1000 == producer }
                #expect(mine == mine.sorted(), "FIFO per producer")
            }
        }
    }

    @Test func queuesCrossAsHandlesToTheSameQueue() throws {
        let queue = Interpreters.createQueue()
        #expect(queue.shareableValue == .queue(queue.id))
        let again = try InterpreterQueue(shareableValue: queue.shareableValue)
        try again.put("shared")
        #expect(try queue.get() == "shared")
        #expect(isShareable(queue))
        #expect(throws: QueueError.self) { try InterpreterQueue(id: 987_654) }
    }

    @Test func asyncPutAndGet() async throws {
        let queue = Interpreters.createQueue(maxSize: 1)
        try await queue.put(5)
        #expect(try await queue.get(timeout: .seconds(1)) == 5)
        await #expect(throws: QueueEmptyError.self) { try await queue.get(timeout: .milliseconds(10)) }
    }

    /// Items are copies owned by the queue: by default they outlive the interpreter that put
    /// them. `remove` and `error` reproduce CPython's UNBOUND_REMOVE and UNBOUND_ERROR.
    @Test(arguments: [UnboundItems.keep, .remove, .error])
    func itemsWhoseInterpreterIsClosed(policy: UnboundItems) throws {
        let queue = Interpreters.createQueue(unboundItems: policy)
        let interpreter = Interpreters.create()
        try interpreter.exec(wat: Fixtures.queues)
        #expect(try interpreter.call("put_one", [.queue(queue.id), 11]) == 0)
        try queue.put(12)  // put by the main interpreter: never unbound
        try interpreter.close()
        switch policy {
        case .keep:
            #expect(queue.count == 2)
            #expect(try queue.get() == 11)
        case .remove:
            #expect(queue.count == 1)
        case .error:
            #expect(queue.count == 2)
            let error = try #require(throws: QueueError.self) { try queue.get() }
            #expect(error.code == .itemInterpreterDestroyed)
        }
        #expect(try queue.get() == 12)
    }

    /// 30,000 tasks awaiting one queue hold no thread each: they are continuations registered
    /// with the queue (one OS thread per await exhausted the process before).
    @Test func thirtyThousandAwaitingTasksEachGetOneItem() async throws {
        let queue = Interpreters.createQueue()
        let count = 30_000
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<count {
                group.addTask { try await queue.get(as: Int.self) }
            }
            // Let the getters register, then feed them from a plain thread.
            try await Task.sleep(for: .milliseconds(200))
            for value in 1...count { try queue.putNowait(value) }
            var sum = 0
            for try await value in group { sum += value }
            return sum
        }
        #expect(total == count * (count + 1) / 2, "every item went to exactly one task")
        #expect(queue.isEmpty)
    }

    @Test func cancellingAnAwaitingTaskTakesNoItem() async throws {
        let queue = Interpreters.createQueue()
        let waiting = Task { try await queue.get() }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        try queue.putNowait(1)
        #expect(queue.count == 1, "the cancelled task did not take the item")
        // A task waiting for room is cancelled without putting.
        let full = Interpreters.createQueue(maxSize: 1)
        try full.putNowait(0)
        let putter = Task { try await full.put(99) }
        try await Task.sleep(for: .milliseconds(50))
        putter.cancel()
        await #expect(throws: CancellationError.self) { try await putter.value }
        #expect(try full.getNowait() == 0)
        #expect(full.isEmpty)
    }

    @Test func anAwaitingPutterIsAdmittedWhenRoomAppears() async throws {
        let queue = Interpreters.createQueue(maxSize: 1)
        try await queue.put(1)
        let putter = Task { try await queue.put(2) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(queue.count == 1)
        #expect(try await queue.get() == 1)
        try await putter.value
        #expect(try await queue.get(timeout: .seconds(5)) == 2)
        await #expect(throws: QueueFullError.self) {
            try await queue.put(3)
            try await queue.put(4, timeout: .milliseconds(20))
        }
    }

    @Test func aQueueIsAnAsyncSequence() async throws {
        let queue = Interpreters.createQueue()
        for value in 0..<5 { try queue.putNowait(value) }
        var seen: [ShareableValue] = []
        for try await item in queue {
            seen.append(item)
            if seen.count == 3 { break }
        }
        #expect(seen == [0, 1, 2])
        #expect(queue.count == 2)
        // Iteration ends when the consuming task is cancelled.
        let drained = Task { () -> Int in
            var count = 0
            for try await _ in queue { count += 1 }
            return count
        }
        try await Task.sleep(for: .milliseconds(100))
        drained.cancel()
        #expect(try await drained.value == 2)
    }
}

import Dispatch
import Synchronization
import TestSupport
import Testing

@testable import ConcurrentFutures

@Suite("Stress")
struct StressTests {
    /// 100,000 tasks submitted from 8 threads at once, while other threads wait on and cancel
    /// them: every future resolves exactly once and every result is right.
    @Test func hundredThousandTasksFromEightThreads() throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 8)
        let perThread = 12_500
        let submitted = (0..<8).map { _ in Recorder<(Int, Future<Int>)>() }
        let resolutions = Counter()
        DispatchQueue.concurrentPerform(iterations: 10) { worker in
            if worker < 8 {
                for index in 0..<perThread {
                    let value = worker * perThread + index
                    let future = try! pool.submit { value &* 3 }
                    future.addDoneCallback { _ in resolutions.increment() }
                    submitted[worker].append((value, future))
                }
            } else {
                // Meanwhile: cancel some futures and wait on others.
                for round in 0..<2_000 {
                    let list = submitted[round % 8].all.suffix(5)
                    for (value, future) in list {
                        if value % 2 == 0 { future.cancel() } else { _ = try? future.result(timeout: .milliseconds(1)) }
                    }
                }
            }
        }
        pool.shutdown()
        let all = submitted.flatMap(\.all)
        #expect(all.count == 100_000)
        var finished = 0
        var cancelled = 0
        for (value, future) in all {
            #expect(future.isDone)
            if future.isCancelled {
                cancelled += 1
            } else {
                #expect(try future.result(timeout: .zero) == value * 3)
                finished += 1
            }
        }
        #expect(finished + cancelled == 100_000)
        #expect(resolutions.count == 100_000, "each future resolved exactly once")
    }
}

import TestSupport
import Testing

@testable import ConcurrentFutures

@Suite("ThreadPoolExecutor as a TaskExecutor")
struct TaskExecutorTests {
    @Test func taskWithExecutorPreferenceRunsOnPoolThreads() async throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 2, threadNamePrefix: "Async")
        let name = await Task(executorPreference: pool) { ExecutorThread.currentName }.value
        #expect(name?.hasPrefix("Async_") == true)
        await pool.shutdown()
    }

    @Test func withTaskExecutorPreferenceCoversChildTasks() async throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 3, threadNamePrefix: "Pref")
        let names = await withTaskExecutorPreference(pool) {
            await withTaskGroup(of: String?.self) { group in
                for _ in 0..<6 { group.addTask { ExecutorThread.currentName } }
                var names: [String?] = []
                for await name in group { names.append(name) }
                return names
            }
        }
        #expect(names.count == 6)
        #expect(names.allSatisfy { $0?.hasPrefix("Pref_") == true })
        await pool.shutdown()
    }

    @Test func jobsStillRunAfterShutdown() async throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 1, threadNamePrefix: "Late")
        await pool.shutdown()
        let name = await Task(executorPreference: pool) { ExecutorThread.currentName }.value
        #expect(name?.hasPrefix("Late_") == true)
    }
}

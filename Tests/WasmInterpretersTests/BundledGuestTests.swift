import BundledGuests
import TestSupport
import Testing

@testable import ConcurrentFutures

/// The guests in `Guests/`, written in Embedded Swift and C, running in interpreters.
@Suite("Guests written in Swift and C")
struct BundledGuestTests {
    let tasks = BundledGuests.tasks
    let examples = BundledGuests.examples
    let faults = BundledGuests.faults

    @Test func benchmarkGuestComputesWhatPythonDoes() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(tasks)
        #expect(try interpreter.call("cpu_bound", [5_000_000]) == 667_500_000)
        #expect(try interpreter.call("double", [21]) == 42)
        #expect(try interpreter.call("square", [-7]) == 49)
        #expect(try interpreter.call("add", [1, 3, 5]) == 9)
        #expect(try interpreter.call("noop") == .none)
        #expect(tasks.imports.isEmpty)
        #expect(tasks.functions.map(\.description).contains("cpu_bound(i64) -> i64"))
    }

    @Test func stringsBytesAndArraysCrossByCopying() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(examples)
        #expect(try interpreter.call("upper", ["hello, wasm ✓"]) == "HELLO, WASM ✓")
        #expect(try interpreter.call("greet", ["Ada"]) == "Hello, Ada!")
        #expect(try interpreter.call("reverse_bytes", [.bytes([1, 2, 3])]) == .bytes([3, 2, 1]))
        #expect(try interpreter.call("sum_array", [[1, 2, 3, 4]]) == 10)
        let nested: ShareableValue = [1, "two", 3.5, nil, true, [.bytes([9]), "x"]]
        #expect(try interpreter.call("describe", [nested]) == nested)
        #expect(try interpreter.call("log_hello") == .none)
    }

    @Test func queueWorkersConsumerReturnsTheList() throws {
        let producer = try examples.function("producer", returning: Int.self)
        let consumer = try examples.function("consumer", returning: [Int].self)
        let queue = Interpreters.createQueue()
        try InterpreterPoolExecutor(maxWorkers: 2, modules: [examples]).run { pool throws in
            let produced = try pool.submit(producer, queue)
            let consumed = try pool.submit(consumer, queue)
            #expect(try produced.result(timeout: .seconds(10)) == 5)
            #expect(try consumed.result(timeout: .seconds(10)) == [0, 1, 4, 9, 16])
        }
    }

    @Test func guestsPutAndGetStructuredValues() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(examples)
        let queue = Interpreters.createQueue()
        #expect(try interpreter.call("put_values", [.queue(queue.id)]) == 0)
        #expect(try queue.get() == "hello")
        #expect(try queue.get() == [1, "two", 3.5, nil, true])
        try queue.put([1, "back"] as ShareableValue)
        #expect(try interpreter.call("get_value", [.queue(queue.id), 0]) == [1, "back"])
        #expect(try interpreter.call("queue_len", [.queue(queue.id)]) == 0)
    }

    @Test func swiftGuestFaults() throws {
        let interpreter = Interpreters.create(limits: InterpreterLimits(fuel: 50_000_000, memoryBytes: 4 << 20))
        defer { try? interpreter.close() }
        try interpreter.exec(examples)
        expectFailure(.unreachable) { _ = try interpreter.call("trap_unreachable") }
        expectFailure(.divideByZero) { _ = try interpreter.call("divide", [1, 0]) }
        expectFailure(.stackExhausted) { _ = try interpreter.call("recurse", [0]) }
        expectFailure(.outOfFuel) { _ = try interpreter.call("spin") }
        expectFailure(.memoryLimit) { _ = try interpreter.call("allocate_mib", [8]) }
        expectFailure(.invalidPointer) { _ = try interpreter.call("return_bad_pointer") }
        #expect(try interpreter.call("allocate_mib", [1]) == 1)
        #expect(try interpreter.call("recurse_depth", [100]) == 100)
        #expect(try interpreter.call("greet", ["again"]) == "Hello, again!")
    }

    @Test func cGuest() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(faults)
        #expect(try interpreter.call("divide", [84, 2]) == 42)
        expectFailure(.divideByZero) { _ = try interpreter.call("divide", [1, 0]) }
        expectFailure(.memoryOutOfBounds) { _ = try interpreter.call("load_oob") }
        #expect(try interpreter.call("rev", ["stressed"]) == "desserts")
        #expect(try interpreter.call("checksum", [.bytes(Array("Wikipedia".utf8))]) == 0x11E6_0398)
    }
}

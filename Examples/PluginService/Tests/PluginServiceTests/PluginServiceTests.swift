import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The guest every request posts: arithmetic, a trap, a runaway loop, and a counted loop that
/// takes a while (the in-flight work of the drain test).
private let guest = """
    (module
      (func (export "add") (param i64 i64) (result i64) local.get 0 local.get 1 i64.add)
      (func (export "boom") unreachable)
      (func (export "spin") (loop $forever br $forever))
      (func (export "count") (param $n i64) (result i64) (local $i i64)
        (block $done
          (loop $next
            (br_if $done (i64.ge_s (local.get $i) (local.get $n)))
            (local.set $i (i64.add (local.get $i) (i64.const 1)))
            (br $next)))
        (local.get $i)))
    """

/// An HTTP answer: its status and body.
private struct Answer: Sendable {
    let status: Int
    let body: String
}

/// One HTTP/1.1 exchange over a socket of its own (`Connection: close`): blocking, so that many
/// run at once on threads of their own, whatever the test runner's thread pool.
private func exchange(port: Int, method: String, path: String, body: String = "") -> Answer? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    let payload = Array(body.utf8)
    let request =
        Array(
            "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n".utf8) + payload
    var sent = 0
    while sent < request.count {
        let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard count > 0 else { return nil }
        sent += count
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { break }
        response += buffer[0..<count]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let headerEnd = text.range(of: "\r\n\r\n"), let statusText = text.split(separator: " ").dropFirst().first,
        let status = Int(statusText)
    else { return nil }
    return Answer(status: status, body: String(text[headerEnd.upperBound...]))
}

/// Runs `count` exchanges at once, each on a thread of its own; the answers in order.
private func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Answer?) -> [Answer?] {
    let answers = Mutex<[Answer?]>(Array(repeating: nil, count: count))
    let remaining = Atomic<Int>(count)
    for index in 0..<count {
        let thread = Thread {
            let answer = body(index)
            answers.withLock { $0[index] = answer }
            remaining.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        }
        thread.stackSize = 256 << 10
        thread.start()
    }
    while remaining.load(ordering: .sequentiallyConsistent) > 0 { usleep(2_000) }
    return answers.withLock { $0 }
}

/// The service started as its own process, on a free loopback port.
private final class RunningService: Sendable {
    let process: Process
    let port: Int

    init() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("PluginService")
        let process = Process()
        process.executableURL = FileManager.default.fileExists(atPath: binary.path) ? binary : Self.findBinary()
        process.arguments = ["--port", "0", "--workers", "2"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line = ""
        while !line.contains("\n") {
            let data = output.fileHandleForReading.availableData
            guard !data.isEmpty else { break }
            line += String(decoding: data, as: UTF8.self)
        }
        guard let portText = line.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines), let port = Int(portText)
        else {
            process.terminate()
            throw ServiceDidNotStart(output: line)
        }
        self.process = process
        self.port = port
    }

    /// The service binary beside the test bundle, wherever the runner was started from.
    private static func findBinary() -> URL {
        var directory = URL(fileURLWithPath: Bundle.main.bundlePath)
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("PluginService")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue { return candidate }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: "PluginService")
    }

    func run(_ function: String, args: [Int] = [], limits: String = "") -> Answer? {
        let arguments = args.map(String.init).joined(separator: ",")
        return exchange(port: port, method: "POST", path: "/run?function=\(function)&args=\(arguments)\(limits)", body: guest)
    }

    /// The value of `name{labels}` once it is `expected`, or the last value read: a worker reports
    /// a batch's counts just after answering its calls, so the last answers may come first.
    func settled(_ name: String, _ labels: String, _ expected: Double) -> Double? {
        var value = metric(name, labels)
        for _ in 0..<200 where value != expected {
            usleep(25_000)
            value = metric(name, labels)
        }
        return value
    }

    /// The value of the sample `name{labels}` in `GET /metrics`.
    func metric(_ name: String, _ labels: String) -> Double? {
        guard let text = exchange(port: port, method: "GET", path: "/metrics")?.body else { return nil }
        let prefix = "\(name){\(labels)} "
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) { return Double(line.dropFirst(prefix.count)) }
        return nil
    }
}

private struct ServiceDidNotStart: Error {
    let output: String
}

/// The example service, as a client sees it: every answer, the metrics it exports and the spans
/// it records, and its drain on SIGTERM.
@Suite("Plugin service", .serialized)
struct PluginServiceTests {
    @Test func answersCountsTracesAndDrains() throws {
        let service = try RunningService()
        defer { if service.process.isRunning { service.process.terminate() } }

        // Good calls, a trap, a runaway guest stopped by its fuel, one by its time limit.
        #expect(service.run("add", args: [2, 3])?.body == #"{"result":5}"#)
        #expect(service.run("add", args: [-7, 7])?.body == #"{"result":0}"#)
        let trap = service.run("boom")
        #expect(trap?.status == 422)
        #expect(trap?.body.contains(#""kind":"unreachable""#) == true)
        let runaway = service.run("spin", limits: "&fuel=1000000")
        #expect(runaway?.status == 422)
        #expect(runaway?.body.contains(#""kind":"outOfFuel""#) == true)
        let late = service.run("spin", limits: "&fuel=2000000000&timeout_ms=50")
        #expect(late?.status == 422)
        #expect(late?.body.contains(#""kind":"timedOut""#) == true)
        let refused = exchange(port: service.port, method: "POST", path: "/run?function=add&args=1,2&fuel=0", body: guest)
        #expect(refused?.status == 400)

        // A burst of 500 requests at once: every one answered, with its own result.
        let burst = concurrently(500) { index in service.run("add", args: [index, 1]) }
        for (index, answer) in burst.enumerated() {
            #expect(answer?.status == 200, "request \(index) answered \(String(describing: answer))")
            #expect(answer?.body == "{\"result\":\(index + 1)}")
        }

        // The pool's counts match the requests sent.
        let pool = #"executor="interpreter",pool="plugins""#
        #expect(service.settled("futures_tasks_submitted_total", pool, 505) == 505)
        #expect(service.settled("futures_tasks_completed_total", pool, 502) == 502)
        #expect(service.settled("futures_tasks_failed_total", pool + #",error="GuestError.unreachable""#, 1) == 1)
        #expect(service.settled("futures_tasks_failed_total", pool + #",error="GuestError.outOfFuel""#, 1) == 1)
        #expect(service.settled("futures_tasks_failed_total", pool + #",error="GuestError.timedOut""#, 1) == 1)
        #expect(service.settled("futures_tasks_cancelled_total", pool, 0) == 0)
        #expect(service.settled("futures_guest_calls_total", pool + #",module="plugin""#, 505) == 505)
        #expect(service.settled("futures_guest_traps_total", pool + #",module="plugin",kind="unreachable""#, 1) == 1)
        #expect(service.settled("futures_queue_depth", pool, 0) == 0)

        // Each call's span is a child of its HTTP request's span. (A span ends just after its call is
        // answered: the last ones may come with a later read.)
        var spans: [[String: Any]] = []
        for _ in 0..<200 where spans.filter({ $0["name"] as? String == "futures.task" }).count < 505 {
            let traces = try #require(exchange(port: service.port, method: "GET", path: "/traces"))
            spans += try #require(
                (try JSONSerialization.jsonObject(with: Data(traces.body.utf8)) as? [String: Any])?["spans"] as? [[String: Any]])
        }
        let requests = Set(spans.filter { $0["name"] as? String == "/run" }.compactMap { $0["span_id"] as? String })
        let tasks = spans.filter { $0["name"] as? String == "futures.task" }
        #expect(tasks.count == 505)
        #expect(tasks.allSatisfy { requests.contains($0["parent_span_id"] as? String ?? "") })

        // SIGTERM while calls run (two on the two workers) and one waits in the pool's queue:
        // all three are answered, then the service exits.
        let slow = Thread.detachedAnswers(3) { _ in service.run("count", args: [3_000_000], limits: "&fuel=2000000000&timeout_ms=10000") }
        var busy = 0.0
        for _ in 0..<4000 where busy < 2 {
            usleep(5_000)
            busy = service.metric("futures_workers_busy", pool) ?? 0
        }
        #expect(busy == 2, "both workers run a slow call")
        kill(service.process.processIdentifier, SIGTERM)
        for answer in slow.wait() {
            #expect(answer?.status == 200)
            #expect(answer?.body == #"{"result":3000000}"#)
        }
        service.process.waitUntilExit()
        #expect(service.process.terminationReason == .exit)
        #expect(service.process.terminationStatus == 0)
    }
}

extension Thread {
    /// Answers being collected on threads of their own.
    fileprivate final class Pending: Sendable {
        let answers = Mutex<[Answer?]>([])
        let remaining: Atomic<Int>
        init(_ count: Int) {
            remaining = Atomic(count)
            answers.withLock { $0 = Array(repeating: nil, count: count) }
        }
        func wait() -> [Answer?] {
            while remaining.load(ordering: .sequentiallyConsistent) > 0 { usleep(2_000) }
            return answers.withLock { $0 }
        }
    }

    /// Starts `count` exchanges on threads of their own and returns at once.
    fileprivate static func detachedAnswers(_ count: Int, _ body: @escaping @Sendable (Int) -> Answer?) -> Pending {
        let pending = Pending(count)
        for index in 0..<count {
            Thread.detachNewThread {
                let answer = body(index)
                pending.answers.withLock { $0[index] = answer }
                pending.remaining.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            }
        }
        return pending
    }
}

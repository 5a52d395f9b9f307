public import ConcurrentFutures
import Foundation
public import Hummingbird
import InMemoryTracing
public import Logging
import Metrics
public import Prometheus
import ServiceLifecycle
import Tracing

/// The plugin service: `POST /run` runs a posted guest function on an `InterpreterPoolExecutor`
/// under the request's fuel, time and memory limits; `GET /metrics` exports every metric in the
/// Prometheus text format; `GET /traces` returns (and forgets) the spans finished since the last
/// read; SIGTERM drains it (the server stops taking connections and finishes the requests it has,
/// then the pool finishes its accepted work).
public enum PluginService {
    /// The pool's limits: what every call gets unless its request asks for less.
    public static let limits = InterpreterLimits(
        fuel: GuestRequest.defaultFuel, memoryBytes: memoryCap, timeLimit: GuestRequest.defaultTimeout)
    /// The most memory a guest may use, in bytes.
    public static let memoryCap = 16 << 20
    /// The largest module a request may post.
    public static let maxBodyBytes = 1 << 20

    /// The metrics registry `GET /metrics` reads.
    public static let registry = PrometheusCollectorRegistry()
    /// The tracer the service's spans go to; `GET /traces` reads it.
    static let tracer = InMemoryTracer()

    /// Sets up metrics and tracing for the process (once, before any pool is made), as a server's
    /// `main` does first.
    public static func bootstrap() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        InstrumentationSystem.bootstrap(tracer)
    }

    /// The application on `host`:`port` (0: any free port), with its pool as one of its services;
    /// `onRunning` gets the port it listens on.
    public static func application(
        host: String = "127.0.0.1", port: Int = 0, workers: Int = 2, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let pool = try InterpreterPoolExecutor(
            maxWorkers: workers, limits: limits, observability: PoolObservability(name: "plugins"))
        let modules = ModuleCache()
        let router = Router()
        router.middlewares.add(TracingMiddleware())
        router.middlewares.add(MetricsMiddleware())
        router.post("run") { request, context -> Response in
            var request = request
            let body = try await request.collectBody(upTo: maxBodyBytes)
            var query: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
            return await run(query: query, body: Array(buffer: body), pool: pool, modules: modules)
        }
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("traces") { _, _ -> Response in
            json(.ok, ["spans": .array(tracer.popFinishedSpans().map(SpanJSON.init).map(\.value))])
        }
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "PluginService"),
            services: [ExecutorService(pool, drainTimeout: .seconds(10))],
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// Runs one request's call and renders the outcome: 200 with the result; 422 when the guest
    /// failed (a trap, out of fuel, out of time, out of memory), with the kind; 400 for a bad
    /// request or module; 503 while draining.
    static func run(query: [String: String], body: [UInt8], pool: InterpreterPoolExecutor, modules: ModuleCache) async -> Response {
        do {
            let request = try GuestRequest(query: query, body: body)
            let module = try modules.module(request.module, memoryBytes: request.memoryBytes)
            let function = GuestFunction<ShareableValue>(
                module: module, name: request.function, fuel: request.fuel, timeLimit: request.timeLimit)
            let future: Future<ShareableValue>
            do {
                future = try pool.submit(function.call(arguments: request.arguments.map { .int($0) }))
            } catch let error as ExecutorError where error.code == .shutdown {
                throw ServiceError(.unavailable, "the service is shutting down")
            }
            let value = try await future.result()
            return json(.ok, ["result": JSONValue(value)])
        } catch let error as ServiceError {
            return json(.init(code: error.status), ["error": .string(error.code.name), "message": .string(error.message)])
        } catch let error as GuestError {
            return json(
                .unprocessableContent,
                ["error": .string("guest"), "kind": .string(error.kind.name), "message": .string(error.message)])
        } catch {
            return json(.internalServerError, ["error": .string("internal"), "message": .string("\(error)")])
        }
    }

    static func json(_ status: HTTPResponse.Status, _ fields: [String: JSONValue]) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: JSONValue.object(fields).text)))
    }
}

import Futures
import InMemoryTracing
import RemoteCalls
import Testing
import Tracing
import WasmInterpreters

/// The trace context a call carries to another process (docs/wire.md, docs/observability.md).
@Suite("Remote tracing")
struct RemoteTracingTests {
    /// The trailing trace field reads back; a request without it reads as before, and writes the
    /// same bytes as before.
    @Test func theTraceFieldRoundTrips() throws {
        let trace = ["traceparent": "00-abc-def-01", "baggage": "tenant=acme"]
        let job = CallRequest(.job(name: "double", argument: .int(21)), trace: trace)
        #expect(try CallRequest(wire: job.wire) == job)
        let guest = CallRequest(.guest(.init(module: .key("k"), function: "f", arguments: [.int(1)], fuel: 10)), trace: trace)
        #expect(try CallRequest(wire: guest.wire) == guest)
        let untraced = CallRequest(.job(name: "double", argument: .int(21)))
        #expect(untraced.wire == [.int(CallRequest.jobTag), .string("double"), .int(21)])
        #expect(try CallRequest(wire: untraced.wire).trace == nil)
        #expect(throws: RemoteError.self) { try CallRequest(wire: [.int(CallRequest.jobTag), .string("x"), .int(1), .int(2)]) }
    }

    /// The worker's span is a child of the submitter's span, whose context the sender injected,
    /// and records how the call ended; without a carrier, no span.
    @Test func theWorkersSpanIsAChildOfTheSubmittersSpan() throws {
        let sender = InMemoryTracer()
        let parent = sender.startSpan("request")
        let carrier = RemoteTracing.carrier(for: parent.context, tracer: sender)
        let worker = InMemoryTracer()
        let request = CallRequest(.job(name: "double", argument: .int(21)), trace: carrier)
        let outcome = RemoteTracing.withSpan(for: request, executor: "process", tracer: worker) {
            #expect(ServiceContext.current?.inMemorySpanContext?.parentSpanID == parent.spanID)
            return .success(.int(42))
        }
        #expect(try outcome.get() == .int(42))
        let spans = worker.finishedSpans
        #expect(spans.count == 1)
        #expect(spans.first?.operationName == "futures.task")
        #expect(spans.first?.parentSpanID == parent.spanID)
        #expect(spans.first?.traceID == parent.context.inMemorySpanContext?.traceID)
        #expect(spans.first?.attributes["futures.outcome"]?.toSpanAttribute() == "completed")

        _ = RemoteTracing.withSpan(for: CallRequest(.job(name: "double", argument: .int(1))), executor: "process", tracer: worker) {
            .success(.none)
        }
        #expect(worker.finishedSpans.count == 1)
    }
}

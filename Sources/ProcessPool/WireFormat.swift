import CFuturesShims
import Futures
import RemoteCalls
import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// The messages between a process pool and its workers, on a socket pair. Each frame is a
/// 16-byte header (the marker `CFW2`, the payload length as a little-endian `UInt32`, and the
/// request id as a little-endian `UInt64`) and a ``Futures/ShareableValue`` in its binary form, always an
/// array whose first element is the message tag. Values, errors and whole batches reuse the one
/// encoding. A reply carries the id of the request it answers; the parent kills a worker whose
/// reply names another request, or whose frame is malformed, as corrupt.
enum WireMessage {
    // Parent to worker.
    static let loadModule: Int64 = 1  // [1, module id, name, bytes, WASI options | none]
    static let configure: Int64 = 2  // [2, the eight fields of a ``RemoteCalls/WorkerConfiguration``]
    // 3 and 4: a call (``RemoteCalls/CallRequest``).
    static let batch: Int64 = 5  // [5, [call, ...]]
    static let initialize: Int64 = 6  // [6, call]: run now, and again after the interpreter is reset
    // Worker to parent.
    static let ready: Int64 = 16  // [16, pid, protocol version]
    // 17 and 18: an outcome (``RemoteCalls/CallOutcome``).
    static let batchResult: Int64 = 19  // [19, [[17, value] | [18, error], ...]]

    static let protocolVersion: Int64 = 5

    /// The request for one remote call (a guest call names its module by the id the worker
    /// loaded it under).
    static func request(for call: RemoteCall, trace: [String: String]? = nil) -> ShareableValue {
        var request = CallRequest(call) { .id($0.id) }
        request.trace = trace
        return request.wire
    }
}

/// One frame: the id of the request it belongs to, and its message.
struct Frame {
    let id: UInt64
    let message: ShareableValue
    /// The frame's size on the socket, header included (for the pool's byte counters).
    var bytes = 0
}

/// One end of the socket between a pool and a worker, exchanging framed messages.
struct FrameChannel {
    let fd: Int32

    /// `CFW2`, the first four bytes of every frame.
    static let marker: UInt32 = 0x3257_4643
    static let headerBytes = 16
    /// How long the rest of a frame may take once its first byte arrived: the sender writes a
    /// frame in one go, so a longer stall means the stream is corrupt (a stray write that looked
    /// like the start of a frame), not that the peer is slow.
    static let stallMilliseconds: Int32 = 10_000

    /// Sends one frame.
    ///
    /// - Returns: The frame's size on the socket, header included.
    /// - Throws: ``ChannelError`` `.closed` when the socket fails.
    @discardableResult
    func send(_ message: ShareableValue, id: UInt64) throws(ChannelError) -> Int {
        var writer = ByteWriter(capacity: 64)
        writer.writeFixed(UInt32(0))
        writer.writeFixed(UInt32(0))
        writer.writeFixed(UInt64(0))
        writer.write(message)
        let length = UInt32(writer.bytes.count - Self.headerBytes)
        writer.bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: Self.marker.littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: length.littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: id.littleEndian, toByteOffset: 8, as: UInt64.self)
        }
        let status = writer.bytes.withUnsafeBytes { cf_send_all(fd, $0.baseAddress, $0.count) }
        if status != 0 { throw ChannelError.closed(errno: status) }
        return writer.bytes.count
    }

    /// Receives one frame, waiting up to `firstMilliseconds` for it to start (negative: forever);
    /// `nil` when nothing came in that time.
    ///
    /// Bytes that do not start with the marker are refused as soon as four have arrived; once a
    /// frame started, its other bytes must keep coming (``stallMilliseconds``).
    func receive(firstMilliseconds: Int32 = -1) throws(ChannelError) -> Frame? {
        var header = [UInt8](repeating: 0, count: Self.headerBytes)
        var received = 0
        while received < Self.headerBytes {
            let count = try receiveSome(
                into: &header, at: received, timeout: received == 0 ? firstMilliseconds : Self.stallMilliseconds,
                during: "a frame header")
            if count == nil { return nil }
            received += count!
            if received >= 4 {
                let marker = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
                guard marker == Self.marker else {
                    throw ChannelError.malformed("bytes that are not a frame (marker 0x\(String(marker, radix: 16)))")
                }
            }
        }
        let (length, id) = header.withUnsafeBytes { raw in
            (
                Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))),
                UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            )
        }
        guard length > 0, length <= RemoteWire.maximumMessageBytes else {
            throw ChannelError.malformed("a frame of \(length) bytes")
        }
        var payload = [UInt8](repeating: 0, count: length)
        var bodyReceived = 0
        while bodyReceived < length {
            guard
                let count = try receiveSome(
                    into: &payload, at: bodyReceived, timeout: Self.stallMilliseconds, during: "a frame of \(length) bytes")
            else { throw ChannelError.malformed("a frame of \(length) bytes stopped arriving for \(Self.stallMilliseconds / 1000) s") }
            bodyReceived += count
        }
        do {
            return Frame(id: id, message: try ShareableValue(decoding: payload), bytes: Self.headerBytes + length)
        } catch {
            throw ChannelError.malformed("\(error)")
        }
    }

    /// Receives what is there (at least one byte) into `buffer` from `offset`; `nil` when
    /// nothing came within `timeout` milliseconds.
    private func receiveSome(
        into buffer: inout [UInt8], at offset: Int, timeout: Int32, during what: String
    ) throws(ChannelError) -> Int? {
        let result = buffer.withUnsafeMutableBytes { raw in
            cf_receive_some(fd, raw.baseAddress! + offset, raw.count - offset, timeout)
        }
        switch result {
        case 0: throw ChannelError.endOfStream
        case Int(-ETIMEDOUT):
            if offset == 0 { return nil }
            throw ChannelError.malformed("\(what) stopped arriving for \(Self.stallMilliseconds / 1000) s")
        case ..<0: throw ChannelError.closed(errno: Int32(-result))
        default: return result
        }
    }
}

/// Why a frame could not be exchanged.
enum ChannelError: Error, CustomStringConvertible {
    case endOfStream
    case closed(errno: Int32)
    case malformed(String)
    /// The worker did not answer in time (stopped, or past the calls' time limits): it is killed.
    case unresponsive(String)

    var description: String {
        switch self {
        case .endOfStream: "the connection was closed"
        case .closed(let errno): "the connection failed (errno \(errno))"
        case .malformed(let what): "malformed frame: \(what)"
        case .unresponsive(let what): what
        }
    }
}

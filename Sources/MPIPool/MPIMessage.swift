import Futures
import RemoteCalls
import WasmInterpreters

/// The messages between rank 0 and the worker ranks. Each is one MPI message of bytes (tag
/// ``MPIRuntime/tag``) holding a ``Futures/ShareableValue`` array in the process pool's binary
/// encoding, whose first element is the message tag. Calls, outcomes, errors and the workers'
/// configuration are the typed messages of ``RemoteCalls`` the process pool sends too; a guest call
/// names its module by a content key instead of a process-local id (docs/wire.md).
enum MPIMessage {
    // Rank 0 to a worker rank.
    static let open: Int64 = 1  // [1, session, the eight fields of a WorkerConfiguration, initializer call | none, slots]
    static let module: Int64 = 2  // [2, key, name, bytes, session]
    static let calls: Int64 = 3  // [3, session, request id, [call, ...]]
    static let close: Int64 = 4  // [4, session]
    static let ping: Int64 = 5  // [5]
    static let exit: Int64 = 6  // [6, finalize]: end; call MPI_Finalize only when every rank is alive
    // A worker rank to rank 0.
    static let ready: Int64 = 16  // [16, cores, pid, host, protocol version]
    static let reply: Int64 = 17  // [17, request id, [outcome, ...]]
    static let pong: Int64 = 18  // [18]

    static let protocolVersion: Int64 = 3

    /// The request for one call; `key` gives the content key of a guest call's module.
    static func request(for call: RemoteCall, key: (GuestModule) -> String) -> ShareableValue {
        CallRequest(call) { .key(key($0)) }.wire
    }

    /// The tag and fields of `message`, or `nil` when it is not a tagged array.
    static func parse(_ message: ShareableValue) -> (tag: Int64, fields: [ShareableValue])? {
        guard case .array(let fields) = message, case .int(let tag)? = fields.first else { return nil }
        return (tag, fields)
    }
}

package import Futures
import RemoteCalls
import WasmInterpreters

/// The messages between rank 0 and the worker ranks. Each is one MPI message of bytes (tag
/// ``MPIRuntime/tag``) holding a ``Futures/ShareableValue`` array in the process pool's binary
/// encoding, whose first element is the message tag. Calls, outcomes, errors and the workers'
/// configuration are the typed messages of ``RemoteCalls`` the process pool sends too; a guest call
/// names its module by a content key instead of a process-local id (docs/wire.md).
package enum MPIMessage {
    // Rank 0 to a worker rank.
    package static let open: Int64 = 1  // [1, session, the eight fields of a WorkerConfiguration, initializer call | none, slots]
    package static let module: Int64 = 2  // [2, key, name, bytes, session, WASI options | none]
    package static let calls: Int64 = 3  // [3, session, request id, [call, ...]]
    package static let close: Int64 = 4  // [4, session]
    package static let ping: Int64 = 5  // [5]
    package static let exit: Int64 = 6  // [6, finalize]: end; call MPI_Finalize only when every rank is alive
    package static let cancel: Int64 = 7  // [7, session]: answer the session's calls not started as not started
    // A worker rank to rank 0.
    package static let ready: Int64 = 16  // [16, cores, pid, host, protocol version]
    package static let reply: Int64 = 17  // [17, request id, [outcome, ...]]
    package static let pong: Int64 = 18  // [18]

    package static let protocolVersion: Int64 = 4

    /// The request for one call; `keys` gives the content key of a guest call's module by its id.
    package static func request(for call: RemoteCall, keys: [Int: String]) -> ShareableValue {
        CallRequest(call) { .key(keys[$0.id] ?? "") }.wire
    }

    /// The tag and fields of `message`, or `nil` when it is not a tagged array.
    package static func parse(_ message: ShareableValue) -> (tag: Int64, fields: [ShareableValue])? {
        guard case .array(let fields) = message, case .int(let tag)? = fields.first else { return nil }
        return (tag, fields)
    }
}

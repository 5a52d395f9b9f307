import Futures
import MPIPool
import RemoteCalls
import Testing
import WasmInterpreters

/// Rank 0's routing rules, driven input by input without MPI: reports, heartbeats, lost ranks,
/// modules sent once, cancellation and exit, checked by the actions that come out.
@Suite("MPI router state")
struct MPIRouterStateTests {
    /// A moment `seconds` after an arbitrary start.
    static func at(_ seconds: Double) -> Deadline { Deadline(nanoseconds: 1_000_000_000_000 + UInt64(seconds * 1e9)) }

    /// A launch of `size` ranks where every worker rank reported at time 0.
    static func launch(size: Int = 3) -> MPIRouterState {
        var state = MPIRouterState(size: size)
        for rank in 1..<size {
            #expect(state.rankReported(rank, cores: 2, pid: 100 + rank, host: "h", version: MPIMessage.protocolVersion, now: at(0)).isEmpty)
        }
        return state
    }

    static let configuration = WorkerConfiguration(limits: .default, engine: .wasmKit)

    /// Opens a session using `ranks`, one slot each, with a heartbeat timeout of `timeout` seconds.
    static func open(_ state: inout MPIRouterState, ranks: [Int], timeout: Int64 = 5) -> Int64 {
        state.openSession(
            configuration, heartbeatTimeout: .seconds(timeout), slots: Dictionary(uniqueKeysWithValues: ranks.map { ($0, 1) }),
            initializer: nil
        ).id
    }

    static let job = RemoteCall.job(name: "square", argument: .int(3))

    /// The sends among `actions`: (message tag, destination, ticket).
    static func sends(_ actions: [MPIRouterState.Action]) -> [(tag: Int64, rank: Int, ticket: UInt64)] {
        actions.compactMap { action in
            guard case .send(let message, let rank, let ticket) = action, let (tag, _) = MPIMessage.parse(message.wire) else { return nil }
            return (tag, rank, ticket)
        }
    }

    /// The ranks pinged among `actions` (pings take no ticket).
    static func pings(_ actions: [MPIRouterState.Action]) -> [Int] {
        actions.compactMap { if case .ping(let rank) = $0 { rank } else { nil } }
    }

    @Test func everyRankReportsAndSessionsOpenOnEveryLiveRank() {
        var state = MPIRouterState(size: 3)
        #expect(!state.allReported)
        _ = state.rankReported(1, cores: 4, pid: 11, host: "a", version: MPIMessage.protocolVersion, now: Self.at(0))
        _ = state.rankReported(2, cores: 0, pid: 12, host: "b", version: MPIMessage.protocolVersion - 1, now: Self.at(0))
        #expect(state.allReported)
        // A rank of another protocol version is reported and lost from the start.
        #expect(state.liveRanks.map(\.rank) == [1])
        #expect(state.lostRanks.map(\.rank) == [2])
        #expect(state.lostRanks.first?.reason.contains("protocol version") == true)
        let opened = state.openSession(Self.configuration, heartbeatTimeout: .seconds(5), slots: [1: 3], initializer: nil)
        let sends = Self.sends(opened.actions)
        #expect(sends.map(\.tag) == [MPIMessage.open])
        #expect(sends.map(\.rank) == [1])
        // The open message carries the slots of that rank last.
        guard case .send(let message, _, _) = opened.actions[0], case .array(let fields) = message.wire else {
            Issue.record("no open message")
            return
        }
        #expect(fields.count == 12)
        #expect(fields.last == .int(3))
    }

    @Test func heartbeatsPingEachRankEveryIntervalAndLoseASilentOne() {
        var state = Self.launch()
        let session = Self.open(&state, ranks: [1, 2], timeout: 2)
        let pending = try! state.submit([Self.job], session: session, to: 2).request
        // Ticks every 20 ms: pings go out once per half second per rank.
        var pings: [Int: Int] = [:]
        var lostActions: [MPIRouterState.Action] = []
        for step in 1...150 {
            let now = Self.at(Double(step) * 0.02)
            state.heard(from: 1, now: now)  // rank 1 keeps answering, rank 2 is silent
            let actions = state.tick(now: now)
            for rank in Self.pings(actions) { pings[rank, default: 0] += 1 }
            if actions.contains(where: { if case .breakSessions = $0 { true } else { false } }) { lostActions = actions }
        }
        #expect(pings[1] == 6)  // 3 s of ticks
        #expect((4...5).contains(pings[2] ?? 0))  // until it was lost after 2 s of silence
        #expect(state.lostRanks.map(\.rank) == [2])
        #expect(state.lostRanks.first?.reason.contains("sent nothing") == true)
        // The session that uses it breaks first, then its awaited request fails.
        guard lostActions.count == 2, case .breakSessions(let sessions, let error) = lostActions[0],
            case .fail(let requests, let failure) = lostActions[1]
        else {
            Issue.record("unexpected actions \(lostActions)")
            return
        }
        #expect(sessions == [session])
        #expect(requests == [pending])
        #expect(error.code == .brokenMPIPool && failure.code == .brokenMPIPool)
        #expect(state.pending.isEmpty)
    }

    @Test func aStalledRank0DoesNotBlameTheRanks() {
        var state = Self.launch()
        _ = Self.open(&state, ranks: [1, 2], timeout: 2)
        _ = state.tick(now: Self.at(0.02))
        // Rank 0 itself was held up for 10 s (a stalled machine): nobody is lost.
        _ = state.tick(now: Self.at(10))
        _ = state.tick(now: Self.at(10.02))
        #expect(state.lostRanks.isEmpty)
        // Silence after that counts again.
        for step in 1...120 { _ = state.tick(now: Self.at(10.02 + Double(step) * 0.02)) }
        #expect(state.lostRanks.map(\.rank) == [1, 2])
    }

    @Test func aLostRankFailsOnlyItsRequestsAndTheSessionsUsingIt() throws {
        var state = Self.launch(size: 4)
        let onOne = Self.open(&state, ranks: [1])
        let onBoth = Self.open(&state, ranks: [1, 2])
        let onThree = Self.open(&state, ranks: [3])
        let first = try state.submit([Self.job], session: onOne, to: 1).request
        let second = try state.submit([Self.job], session: onBoth, to: 2).request
        let third = try state.submit([Self.job], session: onBoth, to: 1).request
        _ = try state.submit([Self.job], session: onThree, to: 3)
        let actions = state.rankFailed(1, "MPI_Test failed")
        guard actions.count == 2, case .breakSessions(let sessions, _) = actions[0], case .fail(let requests, let error) = actions[1] else {
            Issue.record("unexpected actions \(actions)")
            return
        }
        #expect(sessions == [onOne, onBoth])
        #expect(requests == [first, third])
        #expect(error.message.contains("rank 1 (pid 101 on h)"))
        #expect(Set(state.pending.keys).contains(second))
        // Losing it again does nothing; a submission to it throws the same error.
        #expect(state.rankFailed(1, "again").isEmpty)
        #expect(throws: ExecutorError.self) { try state.submit([Self.job], session: onOne, to: 1) }
        #expect(state.lostError(inSession: onThree) == nil)
        #expect(state.lostError(inSession: onBoth)?.code == .brokenMPIPool)
        // A reply from the wrong rank is ignored; the right one is delivered once.
        #expect(state.replied(3, request: second, outcomes: [], now: Self.at(1)).isEmpty)
        let delivered = state.replied(2, request: second, outcomes: [.int(9)], now: Self.at(1))
        guard case .deliver(let request, let outcomes)? = delivered.first else {
            Issue.record("not delivered")
            return
        }
        #expect(request == second && outcomes == [.int(9)])
        #expect(state.replied(2, request: second, outcomes: [.int(9)], now: Self.at(1)).isEmpty)
    }

    @Test func aModuleTravelsToEachRankOnceAndBeforeTheCallsThatNeedIt() throws {
        let module = try GuestModule(wat: #"(module (func (export "f") (result i32) i32.const 7))"#)
        let call = try #require(GuestFunction<Int32>(module: module, name: "f").call().remote)
        var state = Self.launch()
        let session = Self.open(&state, ranks: [1, 2])
        let first = try state.submit([call, call], session: session, to: 1).actions
        #expect(Self.sends(first).map(\.tag) == [MPIMessage.module, MPIMessage.calls])
        #expect(Self.sends(try state.submit([call], session: session, to: 1).actions).map(\.tag) == [MPIMessage.calls])
        #expect(Self.sends(try state.submit([call], session: session, to: 2).actions).map(\.tag) == [MPIMessage.module, MPIMessage.calls])
        #expect(state.modulesSent == 2)
        // The calls name the module by the key the module message gave it.
        guard case .send(let moduleMessage, _, _) = first[0], case .array(let moduleFields) = moduleMessage.wire,
            case .send(let callsMessage, _, _) = first[1], case .array(let callFields) = callsMessage.wire,
            case .array(let requests) = callFields[3]
        else {
            Issue.record("unexpected messages")
            return
        }
        let key = moduleFields[1]
        for request in requests {
            guard case .guest(let guest) = try CallRequest(wire: request).body else {
                Issue.record("not a guest call")
                continue
            }
            #expect(guest.module == .key(key.stringValue ?? "?"))
        }
    }

    @Test func ticketsFollowTheOrderSendsWereDecidedIn() throws {
        var state = Self.launch()
        let session = Self.open(&state, ranks: [1, 2])
        var tickets: [UInt64] = []
        tickets += Self.sends(try state.submit([Self.job], session: session, to: 1).actions).map(\.ticket)
        let tick = state.tick(now: Self.at(0.6))
        #expect(Self.pings(tick) == [1, 2] && Self.sends(tick).isEmpty)  // pings take no ticket
        tickets += Self.sends(state.cancelSession(session)).map(\.ticket)
        tickets += Self.sends(state.closeSession(session)).map(\.ticket)
        #expect(tickets.count == 5)
        #expect(tickets == tickets.sorted() && Set(tickets).count == tickets.count)
        #expect(tickets.first == 2)  // after the two open messages
    }

    @Test func theSequencerHandsMessagesOverInTicketOrderWhateverOrderTheyArriveIn() async {
        let handed = Locked<[UInt8]>([])
        let sequencer = MPISendSequencer { outgoing in handed.withLock { $0.append(outgoing.bytes[0]) } }
        var generator = SystemRandomNumberGenerator()
        let order = (0..<200).shuffled(using: &generator)
        await withTaskGroup(of: Void.self) { group in
            for ticket in order {
                group.addTask {
                    // Every seventh message is not sent after all: its ticket is still posted.
                    sequencer.post(UInt64(ticket), ticket % 7 == 3 ? nil : .init(destination: 1, bytes: [UInt8(ticket)], isWork: true))
                }
            }
        }
        let expected: [UInt8] = (0..<200).filter { $0 % 7 != 3 }.map { UInt8($0) }
        let got = handed.withLock { $0 }
        #expect(got == expected)
        // Exit waits until its messages are handed over: not while an earlier one is missing.
        sequencer.post(201, .init(destination: 1, bytes: [201], isWork: true))
        sequencer.waitUntilHandedOver(through: 201, until: Deadline.after(.milliseconds(50)))
        #expect(handed.withLock { $0.last } == 198)  // 199 was not sent after all
        sequencer.post(200, .init(destination: 1, bytes: [200], isWork: true))
        sequencer.waitUntilHandedOver(through: 201, until: nil)
        #expect(handed.withLock { Array($0.suffix(2)) } == [200, 201])
    }

    @Test func cancellingASessionTellsTheLiveRanksItUses() throws {
        var state = Self.launch(size: 4)
        let session = Self.open(&state, ranks: [1, 2])
        _ = state.rankFailed(2, "gone")
        let sends = Self.sends(state.cancelSession(session))
        #expect(sends.map(\.tag) == [MPIMessage.cancel])
        #expect(sends.map(\.rank) == [1])
        #expect(Self.sends(state.closeSession(session)).map(\.rank) == [1, 3])
        #expect(state.cancelSession(session).isEmpty)  // closed
    }

    @Test func exitEndsSilentRanksTellsEveryRankAndFailsWhatIsStillAwaited() throws {
        var state = Self.launch(size: 4)
        let session = Self.open(&state, ranks: [1, 2, 3])
        let awaited = try state.submit([Self.job], session: session, to: 1).request
        _ = state.rankFailed(3, "it sent nothing for 6 s", silent: true)
        _ = state.rankFailed(2, "MPI_Test failed")
        let (actions, finalize) = state.exit()
        // Not every rank is serving: no MPI_Finalize, which would wait for the lost ones.
        #expect(!finalize)
        guard case .end(let ended) = actions.first else {
            Issue.record("the silent rank is not ended first")
            return
        }
        #expect(ended.rank == 3)
        #expect(actions.count == 4)
        #expect(Self.sends(actions).map(\.rank) == [1, 2, 3])
        #expect(Self.sends(actions).allSatisfy { $0.tag == MPIMessage.exit })
        // Once exiting: nothing new goes out, a late rank is told to end, losses are not news.
        #expect(throws: ExecutorError.self) { try state.submit([Self.job], session: session, to: 1) }
        #expect(state.tick(now: Self.at(30)).isEmpty)
        #expect(state.rankFailed(1, "late").isEmpty)
        #expect(
            Self.sends(state.rankReported(9, cores: 1, pid: 9, host: "h", version: MPIMessage.protocolVersion, now: Self.at(31))).map(\.tag)
                == [MPIMessage.exit])
        let failed = state.exited()
        guard case .fail(let requests, let error)? = failed.first else {
            Issue.record("the awaited request does not fail")
            return
        }
        #expect(requests == [awaited])
        #expect(error.code == .shutdown)
    }

    @Test func exitFinalizesWhenEveryRankServes() {
        var state = Self.launch()
        let (actions, finalize) = state.exit()
        #expect(finalize)
        #expect(Self.sends(actions).map(\.rank) == [1, 2])
        #expect(state.exit().actions.isEmpty)  // once
    }

    /// Random inputs in random order, 300 runs: tickets are handed out without a gap (a missing
    /// ticket would stall every later send), and every request submitted is delivered or failed
    /// exactly once, by a reply, a lost rank or the exit.
    @Test func randomInputsNeverLoseATicketOrARequest() throws {
        var generator = RemoteMessageTests.Generator(state: 77)
        for _ in 0..<300 {
            var state = Self.launch(size: 4)
            var sessions: [Int64] = []
            var tickets: [UInt64] = []
            var submitted: Set<UInt64> = []
            var answered: [UInt64: Int] = [:]
            var now = 0.0
            func record(_ actions: [MPIRouterState.Action]) {
                for action in actions {
                    switch action {
                    case .send(_, _, let ticket): tickets.append(ticket)
                    case .deliver(let request, _): answered[request, default: 0] += 1
                    case .fail(let requests, _): for request in requests { answered[request, default: 0] += 1 }
                    default: break
                    }
                }
            }
            for _ in 0..<60 {
                now += Double(generator.below(400)) / 1000
                let rank = 1 + generator.below(3)
                switch generator.below(8) {
                case 0:
                    let opened = state.openSession(
                        Self.configuration, heartbeatTimeout: .seconds(1),
                        slots: Dictionary([(rank, 1), (1 + generator.below(3), 1)], uniquingKeysWith: +), initializer: nil)
                    sessions.append(opened.id)
                    record(opened.actions)
                case 1, 2:
                    guard let session = sessions.randomElement(using: &generator) else { continue }
                    if let (request, actions) = try? state.submit([Self.job], session: session, to: rank) {
                        submitted.insert(request)
                        record(actions)
                    }
                case 3:
                    guard let request = state.pending.keys.randomElement(using: &generator) else { continue }
                    record(state.replied(state.pending[request]!, request: request, outcomes: [], now: Self.at(now)))
                case 4: record(state.rankFailed(rank, "random loss"))
                case 5: record(state.tick(now: Self.at(now)))
                case 6:
                    guard let session = sessions.randomElement(using: &generator) else { continue }
                    record(generator.chance() ? state.cancelSession(session) : state.closeSession(session))
                default: state.heard(from: rank, now: Self.at(now))
                }
            }
            record(state.exit().actions)
            record(state.exited())
            #expect(tickets == Array(0..<UInt64(tickets.count)))
            #expect(Set(answered.keys) == submitted)
            #expect(answered.values.allSatisfy { $0 == 1 })
            #expect(state.pending.isEmpty)
        }
    }
}

extension ShareableValue {
    fileprivate var stringValue: String? {
        if case .string(let text) = self { text } else { nil }
    }
}

extension RemoteMessageTests.Generator: RandomNumberGenerator {}

import Testing

@testable import WasmInterpreters

/// A trap's ``GuestError/backtrace``: the guest functions on the stack, innermost first, named
/// by the module's `name` section.
///
/// WasmKit gives every frame. The compiled engine gives the function the trap was raised in
/// (recorded by its runtime on the trap path only), then the guest functions of the native
/// stack, named through the shared object's symbol table; the compiler inlines small functions
/// into their callers, so those frames are missing there.
@Suite("Trap backtraces")
struct TrapBacktraceTests {
    /// `run` calls `$outer`, which calls `$inner`, which executes `unreachable`: functions 0
    /// (`inner`), 1 (`outer`) and 2 (`run`, by its export).
    static let wat = """
        (module
          (func $inner (result i64) unreachable)
          (func $outer (result i64) call $inner)
          (func (export "run") (result i64) call $outer))
        """

    /// The module of ``wat``, with a `name` section naming functions 0 and 1 when `named`.
    static func module(named: Bool) throws -> GuestModule {
        var bytes = try GuestModule.compile(wat: wat)
        if named { bytes += nameSection([(0, "inner"), (1, "outer")]) }
        return try GuestModule(bytes: bytes, name: named ? "named" : "unnamed")
    }

    /// A custom `name` section with a function-names subsection (short names only).
    static func nameSection(_ names: [(index: UInt8, name: String)]) -> [UInt8] {
        var map: [UInt8] = [UInt8(names.count)]
        for (index, name) in names { map += [index, UInt8(name.utf8.count)] + Array(name.utf8) }
        let payload: [UInt8] = [4] + Array("name".utf8) + [1, UInt8(map.count)] + map
        return [0, UInt8(payload.count)] + payload
    }

    /// The error of calling `run` on `engine`.
    static func trap(on engine: GuestEngine, named: Bool = true) throws -> GuestError {
        let module = try module(named: named)
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        do {
            _ = try interpreter.call(GuestFunction<Int>(module: module, name: "run"))
        } catch let error as GuestError {
            return error
        }
        Issue.record("run did not trap")
        throw CancellationError()
    }

    @Test func wasmKitGivesEveryFrameByName() throws {
        let error = try Self.trap(on: .wasmKit)
        #expect(error.kind == .unreachable)
        #expect(error.function == "run")
        #expect(error.backtrace == ["inner", "outer", "run"], "\(error.backtrace)")
    }

    @Test func wasmKitNamesAFunctionWithoutANameByItsIndex() throws {
        let error = try Self.trap(on: .wasmKit, named: false)
        // WasmKit falls back to export names only for a module with a name section.
        #expect(error.backtrace == ["func[0]", "func[1]", "func[2]"], "\(error.backtrace)")
    }

    @Test(.enabled(if: compiledEngineTestsRun))
    func compiledEngineNamesTheTrappingFunction() throws {
        let error = try Self.trap(on: .compiled)
        #expect(error.kind == .unreachable)
        #expect(error.backtrace.first == "inner", "\(error.backtrace)")
        if let outer = error.backtrace.firstIndex(of: "outer") { #expect(outer > 0) }
        let unnamed = try Self.trap(on: .compiled, named: false)
        #expect(unnamed.backtrace == ["func[0]"], "\(unnamed.backtrace)")
    }

    /// A recursion that traps at its bottom: the compiled engine names the frames of the native
    /// stack, not only the trapping function (as it did before, `["rec"]`).
    @Test(.enabled(if: compiledEngineTestsRun))
    func compiledEngineGivesTheFramesOfTheStack() throws {
        var bytes = try GuestModule.compile(
            wat: """
                (module
                  (func $rec (param i32) (result i32)
                    (if (i32.eqz (local.get 0)) (then unreachable))
                    (i32.add (call $rec (i32.sub (local.get 0) (i32.const 1))) (local.get 0)))
                  (func (export "run") (param i32) (result i32) (call $rec (local.get 0))))
                """)
        bytes += Self.nameSection([(0, "rec")])
        let module = try GuestModule(bytes: bytes, name: "recursion")
        let interpreter = Interpreters.create(engine: .compiled)
        defer { try? interpreter.close() }
        let error = #expect(throws: GuestError.self) { _ = try interpreter.call("run", in: module, values: [.i32(12)]) }
        let backtrace = error?.backtrace ?? []
        #expect(error?.kind == .unreachable)
        #expect(backtrace.first == "rec", "\(backtrace)")
        #expect(Set(backtrace).isSubset(of: ["rec", "run"]), "\(backtrace)")
        // Thirteen frames of rec on the guest's stack; the optimizer may fold some into others.
        #expect(backtrace.count(where: { $0 == "rec" }) >= 4, "\(backtrace)")
    }

    /// An error that is not a trap has no backtrace, and the initializer without one still
    /// compiles as before.
    @Test func otherErrorsHaveNone() {
        let error = GuestError(kind: .badArguments, function: "f", message: "m", interpreterID: 0)
        #expect(error.backtrace.isEmpty)
    }
}

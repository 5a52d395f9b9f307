import TestSupport
import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

/// The process pool builds compiled guests in the parent, under the build budget, and never
/// loads them there: a module that cannot be built fails its own calls, never the pool or the
/// parent.
@Suite("Process pool, compiled engine", .enabled(if: CompiledEngine.canCompile || getenv("CONCURRENT_FUTURES_REQUIRE_WABT") != nil))
struct CompiledProcessPoolTests {
    @Test func aModuleThatCannotBeBuiltFailsOnlyItsCalls() throws {
        let pool = try ProcessPoolExecutor(maxWorkers: 2, workerExecutable: workerPath, engine: .compiled)
        defer { pool.shutdown() }
        let simd = try GuestModule(wat: "(module (func (export \"lane\") (result i32) v128.const i32x4 5 6 7 8 i32x4.extract_lane 3))")
        // Over the default cap of 10,000 types: refused before any tool runs.
        let types = Array(repeating: "(type (func (param i32)))", count: 10_001)
        let manyTypes = try GuestModule(wat: "(module \(types.joined(separator: " ")) (func (export \"one\") (result i32) i32.const 1))")
        let good = try GuestModule(wat: "(module (func (export \"two\") (result i32) i32.const 2))")
        let futures = try pool.submit(contentsOf: [
            simd.function("lane", returning: Int.self).call(), manyTypes.function("one", returning: Int.self).call(),
            good.function("two", returning: Int.self).call(),
        ])
        for (future, code) in zip(futures.prefix(2), [ModuleError.Code.unsupportedFeature, .tooLarge]) {
            do {
                _ = try future.result()
                Issue.record("\(code): ran")
            } catch let error as ModuleError {
                #expect(error.code == code, "\(error)")
            }
        }
        #expect(try futures[2].result() == 2)
        #expect(try pool.submit(good.function("two", returning: Int.self)).result() == 2)
    }

    /// Under auto, the parent builds in the background and the workers run whatever is ready:
    /// the results are the same throughout.
    @Test func processPoolsRunUnderAuto() throws {
        let constant = Int.random(in: 1...Int(Int32.max))
        let module = try GuestModule(
            wat: "(module (func (export \"answer\") (result i64) (i64.const \(constant))))", name: "auto-process-\(constant)")
        let answer = try module.function("answer", returning: Int.self)
        let pool = try ProcessPoolExecutor(maxWorkers: 2, workerExecutable: workerPath, engine: .auto)
        defer { pool.shutdown() }
        for _ in 0..<3 {
            #expect(try pool.submit(contentsOf: (0..<8).map { _ in answer.call() }).map { try $0.result() } == Array(repeating: constant, count: 8))
            usleep(200_000)
        }
    }
}

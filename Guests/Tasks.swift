// Tasks.swift: the benchmark guest. Pure computation: it imports nothing from the host
// and is linked without the runtime (no allocator, no cf_alloc), so it loads anywhere
// and stays a few hundred bytes. All arguments and results are i64.

/// cpu_bound(n): Python's
///     total = 0
///     for i in range(n): total += i * i; total %= 1_000_000_000
///     return total
/// cpu_bound(5_000_000) == 667500000 (computed with python3). Negative n, like an empty
/// range, returns 0. i * i wraps (it cannot for n < 3_037_000_499, where it matches Python).
@_expose(wasm, "cpu_bound") @_cdecl("cpu_bound")
public func cpu_bound(_ n: Int64) -> Int64 {
    var total: Int64 = 0
    var i: Int64 = 0
    while i < n {
        total = (total &+ i &* i) % 1_000_000_000
        i &+= 1
    }
    return total
}

/// double(x) -> x * 2 (wrapping)
@_expose(wasm, "double") @_cdecl("double")
public func double(_ x: Int64) -> Int64 { x &* 2 }

/// square(x) -> x * x (wrapping)
@_expose(wasm, "square") @_cdecl("square")
public func square(_ x: Int64) -> Int64 { x &* x }

/// add(a, b, c) -> a + b + c (wrapping)
@_expose(wasm, "add") @_cdecl("add")
public func add(_ a: Int64, _ b: Int64, _ c: Int64) -> Int64 { a &+ b &+ c }

/// noop() -> none
@_expose(wasm, "noop") @_cdecl("noop")
public func noop() {}

// plugin.swift: the plugin of plugin.c in Embedded Swift, for the same host API
// (docs/guests.md, "A worked plugin"): `env.log(level, text)` and `env.kv_get(key)`.
//
// Built with `futures build-guest Guests/plugin/plugin.swift -o plugin-swift.wasm`
// (Scripts/generate-guests.sh makes the bundled module).

@_extern(wasm, module: "env", name: "log") @_extern(c)
func host_log(_ level: Int32, _ text: UnsafePointer<UInt8>?, _ length: Int32)

@_extern(wasm, module: "env", name: "kv_get") @_extern(c)
func host_kv_get(_ key: UnsafePointer<UInt8>?, _ length: Int32) -> UInt64

/// Logs `text` at `level` (0 debug, 1 info, 2 warning) through the host.
func log(_ level: Int32, _ text: String) {
    var text = text
    text.withUTF8 { host_log(level, $0.baseAddress, Int32($0.count)) }
}

/// The host's value for `key`, or nil when it has none.
func lookUp(_ key: String) -> String? {
    var key = key
    let found = key.withUTF8 { host_kv_get($0.baseAddress, Int32($0.count)) }
    guard let address = UnsafeMutableRawPointer(bitPattern: UInt(UInt32(truncatingIfNeeded: found))) else { return nil }
    let value = String(guestBytes: address.assumingMemoryBound(to: UInt8.self), count: Int32(truncatingIfNeeded: found >> 32))
    cf_free(address)
    return value
}

/// greet(name) -> string: "<greeting>, <name>!", the greeting read from the host's store
/// ("Hello" when it has none).
@_expose(wasm, "greet") @_cdecl("greet")
public func greet(_ name: UnsafePointer<UInt8>?, _ length: Int32) {
    let greeting = lookUp("greeting") ?? {
        log(2, "no greeting in the store: using Hello")
        return "Hello"
    }()
    log(1, "greeted someone")
    Guest.returnString(greeting + ", " + String(guestBytes: name, count: length) + "!")
}

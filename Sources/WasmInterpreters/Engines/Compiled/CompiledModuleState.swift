/// What the compiled engine knows of one module in this process: its cache key, its library
/// once loaded, its cache entry once built. Kept in the module (``GuestModule/compiled``), so that
/// it goes with it.
struct CompiledModuleState: Sendable {
    var key: String?
    var library: CompiledLibrary?
    var entry: String?
}

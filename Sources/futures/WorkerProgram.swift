import Foundation

/// The program `futures` starts for process pools: `futures-worker` when it was built next to
/// this binary (it starts faster, without Foundation), otherwise this binary itself.
enum WorkerProgram {
    static let path: String? = {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let sibling = me.deletingLastPathComponent().appendingPathComponent("futures-worker").path
        return FileManager.default.isExecutableFile(atPath: sibling) ? sibling : nil
    }()
}

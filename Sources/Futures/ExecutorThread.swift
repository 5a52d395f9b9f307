/// Facts about the current thread, as seen by the executors.
public enum ExecutorThread {
    /// The name of the current thread when it is an executor worker (`<prefix>_<n>`), else `nil`.
    ///
    /// The full name is kept here; the operating system's copy is cut to 15 bytes on Linux.
    public static var currentName: String? {
        guard let identity = DetachedThread.current, identity.isPoolWorker else { return nil }
        return identity.name
    }
}

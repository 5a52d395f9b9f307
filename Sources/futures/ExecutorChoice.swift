import ArgumentParser

/// Which executor `futures map` uses.
enum ExecutorChoice: String, ExpressibleByArgument, CaseIterable {
    case interpreter, thread, process, mpi
}

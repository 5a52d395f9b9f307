#pragma once

/// Asks the kernel to send `sig` to this process when the thread that spawned it exits.
int cf_set_parent_death_signal(int sig);

/// Names the calling thread; the kernel keeps the first 15 bytes.
void cf_set_thread_name(const char *name);

/// The number of CPUs the calling process may run on (its affinity mask), at least 1.
int cf_available_cpus(void);

#include <sys/types.h>

/// Creates a connected pair of stream sockets, both close-on-exec. Returns 0 or -1 (errno).
int cf_socketpair(int fds[2]);

/// Spawns `path` with `argv` and `envp` as a process-pool worker: `channel` becomes its fd 3,
/// its stdin reads /dev/null, stdout and stderr are inherited, every other descriptor is closed,
/// signal handling starts from the defaults, and SIGINT starts blocked (the worker calls
/// `cf_ignore_interrupts`). Returns 0 and sets `*pid`, or an errno value.
int cf_spawn_worker(const char *path, char *const argv[], char *const envp[], int channel, pid_t *pid);

/// Sends all `count` bytes on a socket without raising SIGPIPE. Returns 0 or an errno value.
int cf_send_all(int fd, const void *bytes, size_t count);

/// Receives exactly `count` bytes. Returns 0, -1 at end of stream, or an errno value.
int cf_receive_all(int fd, void *bytes, size_t count);

/// Receives between 1 and `count` bytes, waiting at most `timeout_ms` for them (negative:
/// forever). Reads at once what is already there, without a poll. Returns the number of bytes,
/// 0 at end of stream, -ETIMEDOUT when the wait ran out, or another -errno.
long cf_receive_some(int fd, void *bytes, size_t count, int timeout_ms);

/// Moves descriptor `fd` to the lowest free descriptor at or above `minimum`, close-on-exec,
/// and closes `fd`. Returns the new descriptor, or -1 (errno).
int cf_move_descriptor(int fd, int minimum);

/// The state letter of process `pid` from /proc (`R`, `S`, `T` for stopped...), or 0 when it
/// cannot be read.
char cf_process_state(pid_t pid);

/// Waits up to `timeout_ms` for `pid` to exit (negative waits forever), reaping it. Returns 1 and
/// sets `*status` when reaped, 0 on timeout, or -errno.
int cf_wait_for_exit(pid_t pid, int timeout_ms, int *status);

/// Decodes a wait status: 1 and the exit code, 2 and the signal, or 0.
int cf_decode_status(int status, int *value);

/// Marks a descriptor close-on-exec.
void cf_set_cloexec(int fd);

/// Waits up to `timeout_ms` for `fd` to become readable (or closed). Returns 1 when it is,
/// 0 on timeout, -errno on error.
int cf_wait_readable(int fd, int timeout_ms);

/// Makes every SIGINT and SIGTERM write one byte to `fd` (the self-pipe trick), so a thread
/// reading the other end learns of Ctrl-C or a stop request; installed synchronously, so no signal
/// after this call is lost. Also unblocks both in the calling thread. Returns 0 or an errno value.
int cf_interrupt_pipe_install(int fd);

/// Ignores SIGINT, discarding one that is pending, then unblocks it: a worker's Ctrl-C policy.
void cf_ignore_interrupts(void);

/// Gives SIGINT and SIGTERM the actions they had before `cf_interrupt_pipe_install` and forgets
/// the descriptor.
void cf_interrupt_pipe_remove(void);

// MPI, loaded at run time (see mpi.c): the package builds and runs without MPI installed, and the
// one binary uses whichever MPICH-ABI library (MPICH, Intel MPI, Cray MPICH, MVAPICH) the
// launcher's machine has. Every function returns an MPI error code (0 is success) unless said.

/// Loads the MPI library: `path` when not NULL, else the first of `libmpi.so.12`,
/// `libmpich.so.12`, `libmpi.so` that loads. Returns 0, or -1 with a reason in `error`.
int cf_mpi_load(const char *path, char *error, size_t error_size);

/// Whether this process was started by an MPI launcher (hydra's `mpiexec`, Slurm's `srun`, PMIx):
/// 1 or 0, from the environment the launcher sets.
int cf_mpi_launched(void);

/// `MPI_Init_thread`, then makes errors on `MPI_COMM_WORLD` return codes instead of aborting.
int cf_mpi_init(int required, int *provided);
/// The calling rank and the number of ranks in `MPI_COMM_WORLD`.
int cf_mpi_rank_and_size(int *rank, int *size);
/// `MPI_Isend` of `count` bytes to `dest` on `MPI_COMM_WORLD`; `*request` identifies it.
int cf_mpi_isend(const void *bytes, int count, int dest, int tag, int *request);
/// `MPI_Test`: `*done` becomes 1 when the send finished (the request is then freed).
int cf_mpi_test(int *request, int *done);
/// `MPI_Iprobe` for any source with `tag`: when `*found` is 1, `*source` and `*count` (bytes)
/// describe the message.
int cf_mpi_iprobe(int tag, int *found, int *source, int *count);
/// `MPI_Recv` of the message from `source` with `tag` that a probe found.
int cf_mpi_recv(void *bytes, int count, int source, int tag);
/// `MPI_Finalize`.
int cf_mpi_finalize(void);
/// `MPI_Abort` on `MPI_COMM_WORLD`.
int cf_mpi_abort(int code);
/// The text of an MPI error code, into `text`.
void cf_mpi_error_string(int code, char *text, size_t text_size);

#include <stdbool.h>
#include <stdint.h>

/// SHA-256 in progress (sha256.c).
typedef struct {
    uint32_t h[8];
    uint64_t length;
    uint8_t buffer[64];
    uint32_t used;
} cf_sha256_state;
void cf_sha256_init(cf_sha256_state *state);
void cf_sha256_update(cf_sha256_state *state, const void *bytes, size_t count);
void cf_sha256_final(cf_sha256_state *state, uint8_t digest[32]);
/// Uses the processor's SHA instructions (when it has them) or the portable code, for tests that
/// compare the two; returns whether the processor has them.
bool cf_sha256_use_accelerated(bool enabled);

// The compiled engine's build tools (build.c).

/// Starts `path` with `argv` and `envp` as a build tool, under a supervisor that leads its process
/// group and kills the whole group when the calling process ends (however it ends); the tool has
/// `cpu_seconds` of CPU (SIGKILL one second later), `memory_bytes` of address space and of file
/// size, no core dump, `niceness` (0 keeps the caller's), default signal handling and an empty signal mask; its working directory is `directory`, its
/// stdin /dev/null, its stdout and stderr `output`, and it inherits no other descriptor. Returns 0
/// and sets `*pid` (the supervisor's, also the group's id; it ends as the tool does), or an errno
/// value (the tool could not be started).
int cf_spawn_tool(const char *path, char *const argv[], char *const envp[], int directory, int output,
                  long cpu_seconds, long long memory_bytes, int niceness, pid_t *pid);

/// Waits up to `timeout_ms` for `pid` to exit (negative waits forever), reaping it, without
/// polling where the kernel has pidfds. Returns 1 and sets `*status`, 0 on timeout, or -errno.
int cf_wait_tool(pid_t pid, int timeout_ms, int *status);

/// Kills every process in process group `group` with SIGKILL.
void cf_kill_group(pid_t group);

/// Removes the directory `name` in `parent` and what it holds (two levels), without following
/// links. Async-signal-safe. Returns 0 or an errno value.
int cf_remove_tree_at(int parent, const char *name);

/// Records a running build whose temporary directory is `name` in `parent` (a descriptor that
/// stays open while it runs): `cf_builds_abort` ends it. Returns a slot, or -1 when 64 builds run.
int cf_build_register(int parent, const char *name);
/// Records the process group of the tool the build in `slot` runs now (0: none).
void cf_build_set_group(int slot, pid_t group);
/// Forgets the build in `slot`.
void cf_build_unregister(int slot);
/// Kills the tools of every running build and removes their directories. Async-signal-safe.
void cf_builds_abort(void);
/// Records this process's private cache (the directory `name` in `parent`, a descriptor kept
/// open), removed by `cf_builds_cleanup`, which exit() runs from now on.
void cf_private_cache_register(int parent, const char *name);
/// Ends the running builds (`cf_builds_abort`) and removes the private cache, once.
/// Async-signal-safe.
void cf_builds_cleanup(void);
/// Makes SIGINT, SIGTERM, SIGHUP and SIGQUIT (where they have their default action) and exit()
/// run `cf_builds_cleanup` first. For programs, such as the `futures` tool; idempotent.
void cf_builds_install_cleanup(void);

/// The offset of the first `needle` in `haystack` (memmem), or -1.
long cf_find_bytes(const void *haystack, size_t length, const void *needle, size_t needle_length);

/// The compiled engine's per-thread state (trap jump buffer, current instance, stack bounds),
/// one block per thread for every compiled guest: the compiled guests' shared objects have no
/// thread-local storage of their own (each would add a dynamic TLS block to every thread).
void *cf_compiled_thread_state(void);

/// The load address and file name of the shared object holding `address` (dladdr); returns 0
/// when it is in none. For naming the frames of a compiled guest's trap.
int cf_object_of(const void *address, const void **base, const char **file);

/// Prepares the calling thread to be woken by `cf_wake_thread` and returns it: installs (once)
/// a do-nothing handler for the wake-up signal (SIGRTMIN + 3), without SA_RESTART, so that a
/// blocking system call it interrupts returns EINTR, and unblocks the signal in this thread.
uintptr_t cf_wakeup_prepare(void);
/// Sends the wake-up signal to `thread`; 0 or an error number.
int cf_wake_thread(uintptr_t thread);
/// Installs, once per process, the handler that turns a compiled guest's access past its memory
/// (a fault inside the current instance's reserved range) into that guest's trap, and passes every
/// other SIGSEGV and SIGBUS to the handler installed before it.
void cf_guest_faults_install(void);

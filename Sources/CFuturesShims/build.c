// The compiled engine's build tools (wasm2c, clang), run as bounded children: each in its own
// process group, with CPU, address-space and file-size limits, killed with its parent thread, and
// every running build registered so that a signal or exit can end its tools and remove its
// temporary directory.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "CFuturesShims.h"

static void cf_close_from(int first, int skip) {
    // close_range(2) where the kernel has it; otherwise one descriptor at a time. `skip` stays
    // open (-1: none).
    if (skip >= first) {
        if (skip > first && syscall(SYS_close_range, (unsigned)first, (unsigned)(skip - 1), 0) != 0) {
            for (int fd = first; fd < skip; fd++) close(fd);
        }
        first = skip + 1;
    }
    if (syscall(SYS_close_range, (unsigned)first, ~0u, 0) != 0) {
        long limit = sysconf(_SC_OPEN_MAX);
        if (limit < 0 || limit > 65536) limit = 65536;
        for (int fd = first; fd < limit; fd++) close(fd);
    }
}

/*
 * The tool runs under a supervisor: a child of the caller that leads the tool's process group and
 * kills the whole group as soon as the caller's process ends, however it ends, so that no
 * descendant of the tool (a compiler's linker, a wrapper's children) outlives it. The supervisor
 * learns of the end from a pipe whose only writing end the caller holds (it closes when the caller
 * dies), not from a signal: no handler has to run in a process forked from a multithreaded one.
 * The supervisor ends as the tool does: with its exit status, or by its signal.
 */
static int cf_watch_pipe[2] = {-1, -1};
static pthread_mutex_t cf_watch_lock = PTHREAD_MUTEX_INITIALIZER;

/* The watch pipe's reading end, made at the first spawn (and tried again at the next one if
 * making it failed), or -1 with errno set. */
static int cf_watch_open(void) {
    pthread_mutex_lock(&cf_watch_lock);
    int saved = 0;
    if (cf_watch_pipe[0] < 0 && pipe2(cf_watch_pipe, O_CLOEXEC) != 0) {
        saved = errno;
        cf_watch_pipe[0] = cf_watch_pipe[1] = -1;
    }
    int watch = cf_watch_pipe[0];
    pthread_mutex_unlock(&cf_watch_lock);
    if (watch < 0) errno = saved;
    return watch;
}

/* In the supervisor: waits for `tool` while the caller lives; kills the group when it does not. */
static void cf_supervise(pid_t tool, int watch) {
    int tool_descriptor = (int)syscall(SYS_pidfd_open, tool, 0);
    for (;;) {
        int status;
        pid_t reaped = waitpid(tool, &status, WNOHANG);
        if (reaped == tool) {
            if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
            int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
            struct sigaction action;
            memset(&action, 0, sizeof action);
            action.sa_handler = SIG_DFL;
            sigaction(sig, &action, NULL);
            kill(getpid(), sig);
            _exit(128 + sig);
        }
        if (reaped < 0 && errno != EINTR) _exit(127);
        struct pollfd entries[2] = {{.fd = watch, .events = POLLIN}, {.fd = tool_descriptor, .events = POLLIN}};
        // Without pidfds (kernels before 5.3), look again every 50 ms.
        int ready = poll(entries, tool_descriptor >= 0 ? 2 : 1, tool_descriptor >= 0 ? -1 : 50);
        if (ready > 0 && entries[0].revents != 0) {
            // The caller is gone: the tool and everything it started go too.
            kill(-getpgrp(), SIGKILL);
            _exit(128 + SIGKILL);
        }
    }
}

int cf_spawn_tool(const char *path, char *const argv[], char *const envp[], int directory, int output,
                  long cpu_seconds, long long memory_bytes, int niceness, pid_t *pid) {
    int watch = cf_watch_open();
    if (watch < 0) return errno;
    int watch_writer = cf_watch_pipe[1];
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    int null_input = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_input < 0) {
        int saved = errno;
        close(report[0]);
        close(report[1]);
        return saved;
    }
    // No handler of the caller's may run in the children before they reset them all.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    pid_t supervisor = fork();
    if (supervisor < 0) {
        int saved = errno;
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
        close(report[0]);
        close(report[1]);
        close(null_input);
        return saved;
    }
    if (supervisor == 0) {
        // Only async-signal-safe calls from here on, in both children.
        int failure = 0;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &action, NULL);
        }
        setpgid(0, 0);
        // The supervisor is a copy of the caller's whole address space: it must never dump it to a
        // core file (it ends by the tool's signal), nor let another process of the user read it.
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        // The caller's writing end is not the supervisor's to hold: only the caller's death closes it.
        close(watch_writer);
        sigset_t empty;
        sigemptyset(&empty);
        pid_t tool = fork();
        if (tool < 0) {
            failure = errno;
            ssize_t ignored = write(report[1], &failure, sizeof failure);
            (void)ignored;
            _exit(127);
        }
        if (tool == 0) {
            sigprocmask(SIG_SETMASK, &empty, NULL);
            if (niceness > 0) setpriority(PRIO_PROCESS, 0, niceness);
            struct rlimit cpu = {(rlim_t)cpu_seconds, (rlim_t)cpu_seconds + 1};
            struct rlimit memory = {(rlim_t)memory_bytes, (rlim_t)memory_bytes};
            if (setrlimit(RLIMIT_CPU, &cpu) != 0 || setrlimit(RLIMIT_AS, &memory) != 0 ||
                setrlimit(RLIMIT_FSIZE, &memory) != 0 || fchdir(directory) != 0 ||
                dup2(null_input, 0) < 0 || dup2(output, 1) < 0 || dup2(output, 2) < 0) {
                failure = errno;
            } else {
                cf_close_from(3, report[1]);
                execve(path, argv, envp);
                failure = errno;
            }
            ssize_t ignored = write(report[1], &failure, sizeof failure);
            (void)ignored;
            _exit(127);
        }
        // The supervisor keeps nothing of the caller's open but the pipe it watches.
        close(report[1]);
        cf_close_from(3, watch);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        cf_supervise(tool, watch);
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(report[1]);
    close(null_input);
    int failure = 0;
    ssize_t got;
    do { got = read(report[0], &failure, sizeof failure); } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof failure) {
        int status;
        kill(-supervisor, SIGKILL);
        while (waitpid(supervisor, &status, 0) < 0 && errno == EINTR) {}
        return failure ? failure : ENOEXEC;
    }
    *pid = supervisor;
    return 0;
}

int cf_wait_tool(pid_t pid, int timeout_ms, int *status) {
    int descriptor = (int)syscall(SYS_pidfd_open, pid, 0);
    if (descriptor < 0) return cf_wait_for_exit(pid, timeout_ms, status);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t reaped = waitpid(pid, status, WNOHANG);
        if (reaped == pid) break;
        if (reaped < 0 && errno != EINTR) {
            int saved = errno;
            close(descriptor);
            return -saved;
        }
        int remaining = -1;
        if (timeout_ms >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (elapsed >= timeout_ms) {
                close(descriptor);
                return 0;
            }
            remaining = (int)(timeout_ms - elapsed);
        }
        struct pollfd entry = {.fd = descriptor, .events = POLLIN};
        poll(&entry, 1, remaining);
    }
    close(descriptor);
    return 1;
}

void cf_kill_group(pid_t group) {
    if (group > 0) kill(-group, SIGKILL);
}

static int cf_remove_tree_depth(int parent, const char *name, int depth) {
    int directory = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (directory < 0) return errno == ENOENT ? 0 : errno;
    // getdents64 and unlinkat are system calls: this runs in a signal handler too. A build
    // directory is flat (the tools write their temporary files into it); a private cache holds
    // entries and build directories: two levels are all there is.
    char buffer[4096] __attribute__((aligned(8)));
    for (int round = 0; round < 256; round++) {
        long count = syscall(SYS_getdents64, directory, buffer, sizeof buffer);
        if (count <= 0) break;
        int removed = 0;
        for (long offset = 0; offset < count;) {
            struct {
                unsigned long long inode;
                long long next;
                unsigned short length;
                unsigned char type;
                char name[];
            } *entry = (void *)(buffer + offset);
            if (strcmp(entry->name, ".") != 0 && strcmp(entry->name, "..") != 0) {
                if (unlinkat(directory, entry->name, 0) == 0) {
                    removed = 1;
                } else if (errno == EISDIR && depth > 0 && cf_remove_tree_depth(directory, entry->name, depth - 1) == 0) {
                    removed = 1;
                }
            }
            offset += entry->length;
        }
        // What stays after a pass that removed nothing would stay after the next one too.
        if (!removed) break;
        lseek(directory, 0, SEEK_SET);
    }
    close(directory);
    return unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : errno;
}

int cf_remove_tree_at(int parent, const char *name) { return cf_remove_tree_depth(parent, name, 1); }

// Running builds, for cf_builds_abort: a fixed table, written by the builder threads with atomic
// stores and read by a signal handler.
#define CF_MAX_BUILDS 64
typedef struct {
    _Atomic int state;  // 0 free, 1 being written, 2 live
    _Atomic pid_t group;
    int parent;
    char name[64];
} cf_build_slot;
static cf_build_slot cf_builds[CF_MAX_BUILDS];

int cf_build_register(int parent, const char *name) {
    for (int index = 0; index < CF_MAX_BUILDS; index++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&cf_builds[index].state, &expected, 1)) {
            cf_builds[index].parent = parent;
            strncpy(cf_builds[index].name, name, sizeof cf_builds[index].name - 1);
            cf_builds[index].name[sizeof cf_builds[index].name - 1] = 0;
            atomic_store(&cf_builds[index].group, 0);
            atomic_store(&cf_builds[index].state, 2);
            return index;
        }
    }
    return -1;
}

void cf_build_set_group(int slot, pid_t group) {
    if (slot >= 0 && slot < CF_MAX_BUILDS) atomic_store(&cf_builds[slot].group, group);
}

void cf_build_unregister(int slot) {
    if (slot >= 0 && slot < CF_MAX_BUILDS) {
        atomic_store(&cf_builds[slot].group, 0);
        atomic_store(&cf_builds[slot].state, 0);
    }
}

void cf_builds_abort(void) {
    for (int index = 0; index < CF_MAX_BUILDS; index++) {
        if (atomic_load(&cf_builds[index].state) != 2) continue;
        pid_t group = atomic_exchange(&cf_builds[index].group, 0);
        if (group > 0) {
            kill(-group, SIGKILL);
            int status;
            while (waitpid(group, &status, 0) < 0 && errno == EINTR) {}
        }
        cf_remove_tree_at(cf_builds[index].parent, cf_builds[index].name);
    }
}

// The private cache of this process (without HOME), removed with its running builds.
static _Atomic int cf_private_parent = -1;
static char cf_private_name[256];

static void cf_private_cache_remove(void) {
    int parent = atomic_exchange(&cf_private_parent, -1);
    if (parent < 0) return;
    cf_remove_tree_at(parent, cf_private_name);
}

void cf_builds_cleanup(void) {
    cf_builds_abort();
    cf_private_cache_remove();
}

/* The signal that cf_builds_signal_handler is ending the process with (0: none). */
static _Atomic int cf_ending_signal;

/* Ends the process by `sig`, now, from whichever thread calls it. */
static void cf_die_by(int sig) {
    signal(sig, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, sig);
    sigprocmask(SIG_UNBLOCK, &only, NULL);
    raise(sig);
    _exit(128 + sig);
}

/* At exit: the cleanup; and when a signal handler is ending the process meanwhile (a thread whose
 * build failed because the handler killed its tools got to exit first), the process still ends
 * by that signal, not with the thread's status. */
static void cf_exit_cleanup(void) {
    cf_builds_cleanup();
    int sig = atomic_load(&cf_ending_signal);
    if (sig != 0) cf_die_by(sig);
}

/* The one exit handler, registered once, by the first of its two callers. */
static void cf_cleanup_at_exit(void) {
    static _Atomic int registered;
    if (!atomic_exchange(&registered, 1)) atexit(cf_exit_cleanup);
}

void cf_private_cache_register(int parent, const char *name) {
    strncpy(cf_private_name, name, sizeof cf_private_name - 1);
    atomic_store(&cf_private_parent, parent);
    cf_cleanup_at_exit();
}

static void cf_builds_signal_handler(int sig) {
    atomic_store(&cf_ending_signal, sig);
    cf_builds_cleanup();
    cf_die_by(sig);
}

void cf_builds_install_cleanup(void) {
    static _Atomic int installed;
    if (atomic_exchange(&installed, 1)) return;
    cf_cleanup_at_exit();
    int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (unsigned index = 0; index < sizeof signals / sizeof signals[0]; index++) {
        struct sigaction current;
        // Only where nobody handles the signal yet: a program's own handler stays.
        if (sigaction(signals[index], NULL, &current) != 0 || current.sa_handler != SIG_DFL) continue;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = cf_builds_signal_handler;
        sigemptyset(&action.sa_mask);
        sigaction(signals[index], &action, NULL);
    }
}

long cf_find_bytes(const void *haystack, size_t length, const void *needle, size_t needle_length) {
    const void *found = memmem(haystack, length, needle, needle_length);
    return found ? (long)((const char *)found - (const char *)haystack) : -1;
}

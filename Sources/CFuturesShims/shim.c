#define _GNU_SOURCE
#ifndef __linux__
#error "ConcurrentFutures builds on Linux only (it uses prctl, sched_getaffinity, posix_spawn_file_actions_addclosefrom_np and /proc)"
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include "CFuturesShims.h"

int cf_set_parent_death_signal(int sig) {
    return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0);
}

void cf_set_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, 15);
    truncated[15] = '\0';
    pthread_setname_np(pthread_self(), truncated);
}

#include <sched.h>
#include <unistd.h>

int cf_available_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int count = CPU_COUNT(&set);
        if (count > 0) return count;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

int cf_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
}

int cf_spawn_worker(const char *path, char *const argv[], char *const envp[], int channel, pid_t *pid) {
    // dup2(3, 3) would keep close-on-exec set, so make sure the source is not already 3.
    int source = channel;
    if (source == 3) {
        source = fcntl(channel, F_DUPFD_CLOEXEC, 10);
        if (source < 0) return errno;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    posix_spawn_file_actions_adddup2(&actions, source, 3);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 4);
    // SIGINT starts blocked: the worker ignores it and then unblocks it, so a Ctrl-C while it
    // starts stays pending and is discarded instead of killing it.
    sigset_t mask, defaults;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGCHLD);
    posix_spawnattr_setsigmask(&attributes, &mask);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (source != channel) close(source);
    return result;
}

int cf_send_all(int fd, const void *bytes, size_t count) {
    const char *cursor = bytes;
    while (count > 0) {
        ssize_t sent = send(fd, cursor, count, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        cursor += sent;
        count -= (size_t)sent;
    }
    return 0;
}

int cf_receive_all(int fd, void *bytes, size_t count) {
    char *cursor = bytes;
    while (count > 0) {
        ssize_t received = recv(fd, cursor, count, 0);
        if (received == 0) return -1;
        if (received < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        cursor += received;
        count -= (size_t)received;
    }
    return 0;
}

long cf_receive_some(int fd, void *bytes, size_t count, int timeout_ms) {
    for (;;) {
        ssize_t received = recv(fd, bytes, count, timeout_ms < 0 ? 0 : MSG_DONTWAIT);
        if (received >= 0) return (long)received;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        struct pollfd entry = { .fd = fd, .events = POLLIN };
        int ready;
        do { ready = poll(&entry, 1, timeout_ms); } while (ready < 0 && errno == EINTR);
        if (ready < 0) return -errno;
        if (ready == 0) return -ETIMEDOUT;
    }
}

int cf_move_descriptor(int fd, int minimum) {
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, minimum);
    if (moved < 0) return -1;
    close(fd);
    return moved;
}

#include <stdio.h>

char cf_process_state(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file) return 0;
    char buffer[512];
    size_t length = fread(buffer, 1, sizeof buffer - 1, file);
    fclose(file);
    buffer[length] = 0;
    // The command name is in parentheses and may contain anything: the state follows the last ')'.
    char *close_paren = strrchr(buffer, ')');
    if (!close_paren || close_paren[1] != ' ') return 0;
    return close_paren[2];
}

int cf_wait_for_exit(pid_t pid, int timeout_ms, int *status) {
    if (timeout_ms < 0) {
        for (;;) {
            pid_t reaped = waitpid(pid, status, 0);
            if (reaped == pid) return 1;
            if (reaped < 0 && errno != EINTR) return -errno;
        }
    }
    struct timespec pause = {0, 200000};  // 0.2 ms
    long waited_us = 0;
    for (;;) {
        pid_t reaped = waitpid(pid, status, WNOHANG);
        if (reaped == pid) return 1;
        if (reaped < 0 && errno != EINTR) return -errno;
        if (waited_us >= (long)timeout_ms * 1000) return 0;
        nanosleep(&pause, NULL);
        waited_us += 200;
    }
}

int cf_decode_status(int status, int *value) {
    if (WIFEXITED(status)) { *value = WEXITSTATUS(status); return 1; }
    if (WIFSIGNALED(status)) { *value = WTERMSIG(status); return 2; }
    return 0;
}

void cf_set_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

#include <poll.h>

int cf_wait_readable(int fd, int timeout_ms) {
    struct pollfd entry = { .fd = fd, .events = POLLIN };
    for (;;) {
        int ready = poll(&entry, 1, timeout_ms);
        if (ready >= 0) return ready > 0 ? 1 : 0;
        if (errno != EINTR) return -errno;
    }
}

#include <signal.h>

static volatile sig_atomic_t cf_interrupt_fd = -1;
// The SIGINT action before cf_interrupt_pipe_install, restored by cf_interrupt_pipe_remove.
static struct sigaction cf_interrupt_previous;
// The SIGTERM action before cf_interrupt_pipe_install, restored by cf_interrupt_pipe_remove.
static struct sigaction cf_terminate_previous;

static void cf_interrupt_handler(int sig) {
    (void)sig;
    int saved = errno;
    int fd = cf_interrupt_fd;
    if (fd >= 0) {
        char byte = 1;
        ssize_t ignored = write(fd, &byte, 1);
        (void)ignored;
    }
    errno = saved;
}

int cf_interrupt_pipe_install(int fd) {
    cf_interrupt_fd = fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = cf_interrupt_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &action, &cf_interrupt_previous) != 0) return errno;
    // SIGTERM (a service manager's stop) drains the same way as a first Ctrl-C.
    if (sigaction(SIGTERM, &action, &cf_terminate_previous) != 0) return errno;
    // A process started from a thread that blocks SIGINT (libdispatch's worker threads block
    // most signals) inherits that mask: unblock it here, or the signal would stay pending.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    return pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
}

void cf_ignore_interrupts(void) {
    signal(SIGINT, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
}

void cf_interrupt_pipe_remove(void) {
    sigaction(SIGINT, &cf_interrupt_previous, NULL);
    sigaction(SIGTERM, &cf_terminate_previous, NULL);
    cf_interrupt_fd = -1;
}

#include <setjmp.h>
#include <stdint.h>

static __thread _Alignas(16) unsigned char cf_compiled_state[64];

void *cf_compiled_thread_state(void) { return cf_compiled_state; }

// The start of the block above, as the compiled guests' runtime lays it out (cf-rt.c), and the one
// field of an instance's header the fault handler reads (wasm-rt.h, offset 40).
typedef struct {
    jmp_buf *target;
    unsigned char *current;
} cf_compiled_thread_view;
#define CF_HEADER_MEMORY_BASE 40
#define CF_MEMORY_RESERVE ((8ull << 30) + 65536ull)
#define CF_TRAP_OUT_OF_BOUNDS 1

static struct sigaction cf_fault_previous[2];

// A fault inside the reserved range of the memory of the instance this thread is running is that
// guest's access out of bounds: it ends the run as a trap. Any other fault is not ours: it goes to
// the handler installed before (or to the default action, by returning with it restored).
static void cf_guest_fault(int signal, siginfo_t *info, void *context) {
    cf_compiled_thread_view *thread = (cf_compiled_thread_view *)cf_compiled_state;
    if (thread->target != NULL && thread->current != NULL) {
        unsigned char *base;
        memcpy(&base, thread->current + CF_HEADER_MEMORY_BASE, sizeof base);
        uintptr_t address = (uintptr_t)info->si_addr;
        if (base != NULL && address >= (uintptr_t)base && address - (uintptr_t)base < CF_MEMORY_RESERVE) {
            longjmp(*thread->target, CF_TRAP_OUT_OF_BOUNDS);
        }
    }
    struct sigaction *previous = &cf_fault_previous[signal == SIGSEGV ? 0 : 1];
    if ((previous->sa_flags & SA_SIGINFO) && previous->sa_sigaction != NULL) {
        previous->sa_sigaction(signal, info, context);
    } else if (previous->sa_handler != SIG_DFL && previous->sa_handler != SIG_IGN && previous->sa_handler != NULL) {
        previous->sa_handler(signal);
    } else {
        // Default (or ignored, which for a fault means the same): the instruction faults again
        // and the process ends as it would have without this handler.
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigemptyset(&fallback.sa_mask);
        sigaction(signal, &fallback, NULL);
    }
}

static void cf_guest_faults_install_once(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = cf_guest_fault;
    // SA_NODEFER: the signal is not blocked while the handler runs, so jumping out of it leaves the
    // thread's mask as it was.
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &cf_fault_previous[0]);
    sigaction(SIGBUS, &action, &cf_fault_previous[1]);
}

void cf_guest_faults_install(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cf_guest_faults_install_once);
}

int cf_object_of(const void *address, const void **base, const char **file) {
  Dl_info info;
  if (dladdr(address, &info) == 0) return 0;
  *base = info.dli_fbase;
  *file = info.dli_fname;
  return 1;
}

// Waking a thread out of a blocking system call: a real-time signal whose handler does nothing,
// installed without SA_RESTART, so that the call returns EINTR. Used for a WASI `open` that
// waits on a FIFO past its call's deadline (the bridge retries it, on the path as it is then).
static void cf_wakeup_handler(int signal) { (void)signal; }
static pthread_once_t cf_wakeup_once = PTHREAD_ONCE_INIT;
static void cf_wakeup_install_once(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = cf_wakeup_handler;
    sigemptyset(&action.sa_mask);
    sigaction(SIGRTMIN + 3, &action, NULL);
}

uintptr_t cf_wakeup_prepare(void) {
    pthread_once(&cf_wakeup_once, cf_wakeup_install_once);
    // Threads started from libdispatch's inherit its mask, which blocks most signals.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGRTMIN + 3);
    pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
    return (uintptr_t)pthread_self();
}

int cf_wake_thread(uintptr_t thread) { return pthread_kill((pthread_t)thread, SIGRTMIN + 3); }

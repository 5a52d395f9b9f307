#pragma once

/// Asks the kernel to send `sig` to this process when the thread that spawned it exits.
int cf_set_parent_death_signal(int sig);

/// Names the calling thread; the kernel keeps the first 15 bytes.
void cf_set_thread_name(const char *name);

/// The number of CPUs the calling process may run on (its affinity mask), at least 1.
int cf_available_cpus(void);

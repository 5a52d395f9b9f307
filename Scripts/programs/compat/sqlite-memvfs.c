/* The operating-system layer for SQLite built with SQLITE_OS_OTHER, the same on both targets: one VFS
   that opens no files (so every database is ":memory:" and temporary storage stays in memory), with
   time, sleep and randomness from the C library. The benchmark therefore measures SQLite's own engine,
   not the host's file system. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sqlite3.h"

static int memvfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags) {
    (void)vfs; (void)name; (void)flags; (void)out_flags;
    file->pMethods = 0;
    return SQLITE_CANTOPEN;
}
static int memvfs_delete(sqlite3_vfs *vfs, const char *name, int sync) { (void)vfs; (void)name; (void)sync; return SQLITE_IOERR_DELETE; }
static int memvfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *result) {
    (void)vfs; (void)name; (void)flags;
    *result = 0;
    return SQLITE_OK;
}
static int memvfs_full_pathname(sqlite3_vfs *vfs, const char *name, int size, char *out) {
    (void)vfs;
    sqlite3_snprintf(size, out, "%s", name);
    return SQLITE_OK;
}
static int memvfs_randomness(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    for (int i = 0; i < size; i++) out[i] = (char)rand();
    return size;
}
static int memvfs_sleep(sqlite3_vfs *vfs, int microseconds) { (void)vfs; return microseconds; }
static int memvfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *now) {
    (void)vfs;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *now = (sqlite3_int64)210866760000000LL + (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return SQLITE_OK;
}
static int memvfs_current_time(sqlite3_vfs *vfs, double *now) {
    sqlite3_int64 ms;
    memvfs_current_time_int64(vfs, &ms);
    *now = ms / 86400000.0;
    return SQLITE_OK;
}
static int memvfs_last_error(sqlite3_vfs *vfs, int size, char *out) { (void)vfs; (void)size; (void)out; return 0; }

static sqlite3_vfs memvfs = {
    2, sizeof(sqlite3_file), 512, 0, "memvfs", 0,
    memvfs_open, memvfs_delete, memvfs_access, memvfs_full_pathname,
    0, 0, 0, 0,
    memvfs_randomness, memvfs_sleep, memvfs_current_time, memvfs_last_error,
    memvfs_current_time_int64,
};

int sqlite3_os_init(void) { return sqlite3_vfs_register(&memvfs, 1); }
int sqlite3_os_end(void) { return SQLITE_OK; }

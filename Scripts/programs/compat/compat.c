/* What this wasi-libc lacks and the corpus's programs call: each fails as a sandbox without the
   facility would (ENOSYS), or, for longjmp, ends the program with a message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

_Noreturn void cf_compat_longjmp(void) {
    fputs("longjmp is not available in this WebAssembly build\n", stderr);
    abort();
}
int system(const char *command) { (void)command; errno = ENOSYS; return command ? -1 : 0; }
FILE *tmpfile(void) { errno = ENOSYS; return NULL; }
char *tmpnam(char *name) { (void)name; errno = ENOSYS; return NULL; }
int chmod(const char *path, mode_t mode) { (void)path; (void)mode; errno = ENOSYS; return -1; }
int fchmod(int fd, mode_t mode) { (void)fd; (void)mode; errno = ENOSYS; return -1; }
int chown(const char *path, uid_t owner, gid_t group) { (void)path; (void)owner; (void)group; errno = ENOSYS; return -1; }
int fchown(int fd, uid_t owner, gid_t group) { (void)fd; (void)owner; (void)group; errno = ENOSYS; return -1; }

/* pwd.h for wasm32-wasi programs (this wasi-libc has none): there are no users in the sandbox, so
   getpwuid finds none and a program falls back to what it does without a home directory. */
#ifndef CF_COMPAT_PWD_H
#define CF_COMPAT_PWD_H
#include <stddef.h>
#include <sys/types.h>
struct passwd { char *pw_name; char *pw_dir; };
static inline struct passwd *getpwuid(uid_t uid) { (void)uid; return NULL; }
static inline uid_t getuid(void) { return 0; }
#endif

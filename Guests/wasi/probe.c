// probe.c: a WASI reactor that tests the sandbox around WASI guests. Each export tries one thing
// a guest might do (print, read its arguments, open host files, reach a socket, exit) and
// reports what it got. Built with:
//     futures build-guest --wasi reactor Guests/wasi/probe.c -o Sources/BundledGuests/Modules/probe.wasm
#define CF_IMPLEMENTATION
#include "cf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void return_text(const char *text) { cf_return_string(text, (int32_t)strlen(text)); }

// Returns "error: <strerror(errno)>".
static void return_error(void) {
    char text[600];
    snprintf(text, sizeof text, "error: %s", strerror(errno));
    return_text(text);
}

// The guest ABI's (pointer, length) string as a C string in `name`.
static void c_string(char name[512], const uint8_t *path, int32_t length) {
    snprintf(name, 512, "%.*s", (int)length, (const char *)path);
}

// greet(name): prints a line and returns a string made with malloc. The worked example.
CF_EXPORT("greet") void greet(const uint8_t *name, int32_t length) {
    char *text = malloc((size_t)length + 32);
    int written = snprintf(text, (size_t)length + 32, "hello, %.*s!", (int)length, (const char *)name);
    printf("greeting %.*s\n", (int)length, (const char *)name);
    cf_return_string(text, written);
    free(text);
}

// arguments(): argv and environ, one per line, on stdout; returns argc.
CF_EXPORT("arguments") int64_t arguments(void) {
    // A reactor has no main to receive argv: ask WASI, as a command's start-up code does.
    size_t count = 0, size = 0;
    (void)__wasi_args_sizes_get(&count, &size);
    char **argv = calloc(count + 1, sizeof(char *));
    char *buffer = malloc(size + 1);
    (void)__wasi_args_get((uint8_t **)argv, (uint8_t *)buffer);
    for (size_t i = 0; i < count; i++) printf("arg %s\n", argv[i]);
    size_t envCount = 0, envSize = 0;
    (void)__wasi_environ_sizes_get(&envCount, &envSize);
    char **env = calloc(envCount + 1, sizeof(char *));
    char *envBuffer = malloc(envSize + 1);
    (void)__wasi_environ_get((uint8_t **)env, (uint8_t *)envBuffer);
    for (size_t i = 0; i < envCount; i++) printf("env %s\n", env[i]);
    free(argv); free(buffer); free(env); free(envBuffer);
    fflush(stdout);
    return (int64_t)count;
}

// shout(): reads standard input to its end, writes it upper-cased; returns the bytes read.
CF_EXPORT("shout") int64_t shout(void) {
    int64_t total = 0;
    int c;
    while ((c = getchar()) != EOF) {
        putchar(c >= 'a' && c <= 'z' ? c - 32 : c);
        total++;
    }
    fflush(stdout);
    clearerr(stdin);
    return total;
}

// read_file(path): the file's first line, or "error: <strerror>".
CF_EXPORT("read_file") void read_file(const uint8_t *path, int32_t length) {
    char name[512];
    c_string(name, path, length);
    FILE *file = fopen(name, "r");
    if (!file) return return_error();
    char line[512] = "";
    if (!fgets(line, sizeof line, file)) line[0] = 0;
    fclose(file);
    line[strcspn(line, "\n")] = 0;
    return_text(line);
}

// write_file(path, text): creates or replaces the file; "ok" or "error: <strerror>".
CF_EXPORT("write_file") void write_file(const uint8_t *path, int32_t length, const uint8_t *text, int32_t textLength) {
    char name[512];
    c_string(name, path, length);
    FILE *file = fopen(name, "w");
    if (!file) return return_error();
    fwrite(text, 1, (size_t)textLength, file);
    fclose(file);
    return_text("ok");
}

// list_dir(path): the entries' names, sorted, comma-separated, or "error: <strerror>".
static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
CF_EXPORT("list_dir") void list_dir(const uint8_t *path, int32_t length) {
    char name[512];
    c_string(name, path, length);
    DIR *dir = opendir(name);
    if (!dir) return return_error();
    char *names[256];
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) && count < 256) {
        if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")) names[count++] = strdup(entry->d_name);
    }
    closedir(dir);
    qsort(names, (size_t)count, sizeof names[0], compare_names);
    char text[4096] = "";
    for (int i = 0; i < count; i++) {
        if (i) strncat(text, ",", sizeof text - strlen(text) - 1);
        strncat(text, names[i], sizeof text - strlen(text) - 1);
        free(names[i]);
    }
    return_text(text);
}

// socket(): what sock_accept on descriptor 3 and sock_send on descriptor 1 return (WASI errno values).
CF_EXPORT("socket") int64_t socket_probe(void) {
    __wasi_fd_t accepted = 0;
    __wasi_errno_t a = __wasi_sock_accept(3, 0, &accepted);
    __wasi_ciovec_t vector = {(const uint8_t *)"x", 1};
    __wasi_size_t sent = 0;
    __wasi_errno_t b = __wasi_sock_send(1, &vector, 1, 0, &sent);
    return (int64_t)a * 1000 + b;
}

// bad_pointer(): fd_write with an iovec pointing past memory; returns the WASI errno.
CF_EXPORT("bad_pointer") int64_t bad_pointer(void) {
    __wasi_ciovec_t vector = {(const uint8_t *)0xFFFFFF00u, 4096};
    __wasi_size_t written = 0;
    __wasi_errno_t first = __wasi_fd_write(1, &vector, 1, &written);
    __wasi_errno_t second = __wasi_fd_write(1, (const __wasi_ciovec_t *)0xFFFFFFF0u, 1, &written);
    return (int64_t)first * 1000 + second;
}

// spam(): prints forever.
CF_EXPORT("spam") int64_t spam(void) {
    for (long i = 0;; i++) printf("line %ld of a guest that never stops printing\n", i);
}

// exit_with(status): calls exit.
CF_EXPORT("exit_with") int64_t exit_with(int64_t status) { exit((int)status); }

// counter(): counts calls in this instance.
static int64_t calls;
CF_EXPORT("counter") int64_t counter(void) { return ++calls; }

// clock_ok(): 1 when the clocks and random bytes work.
CF_EXPORT("clock_ok") int64_t clock_ok(void) {
    struct timespec now;
    unsigned char bytes[16] = {0};
    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0) return 0;
    if (getentropy(bytes, sizeof bytes) != 0) return 0;
    int nonzero = 0;
    for (int i = 0; i < 16; i++) nonzero |= bytes[i];
    return nonzero ? 1 : 0;
}

// plugin.c: a plugin in C for the host API of docs/guests.md ("A worked plugin"). The host
// gives it two functions of its own, imported from module "env":
//
//     log(level, text)  -> nothing   (level: 0 debug, 1 info, 2 warning)
//     kv_get(key)       -> i64       (the value's address in the low 32 bits, its length in the
//                                      high 32; 0 when the key is missing; the guest frees it)
//
// Built with `futures build-guest Guests/plugin/plugin.c -o plugin-c.wasm`
// (Scripts/generate-guests.sh makes the bundled module).

#define CF_IMPLEMENTATION
#include "cf.h"

__attribute__((import_module("env"), import_name("log")))
void host_log(int32_t level, const char *text, int32_t length);

__attribute__((import_module("env"), import_name("kv_get")))
uint64_t host_kv_get(const char *key, int32_t length);

static void log_text(int32_t level, const char *text) { host_log(level, text, (int32_t)strlen(text)); }

// greet(name) -> string: "<greeting>, <name>!", the greeting read from the host's store
// ("Hello" when it has none).
CF_EXPORT("greet")
void greet(const uint8_t *name, int32_t length) {
    uint64_t found = host_kv_get("greeting", 8);
    char *greeting = (char *)(uintptr_t)(uint32_t)found;
    int32_t greeting_length = (int32_t)(found >> 32);
    if (greeting == NULL) {
        log_text(2, "no greeting in the store: using Hello");
        greeting_length = 5;
    }
    int32_t total = greeting_length + 2 + length + 1;
    char *text = malloc((size_t)total);
    if (text == NULL) cf_trap();
    memcpy(text, greeting ? greeting : "Hello", (size_t)greeting_length);
    memcpy(text + greeting_length, ", ", 2);
    memcpy(text + greeting_length + 2, name, (size_t)length);
    text[total - 1] = '!';
    log_text(1, "greeted someone");
    cf_return_string(text, total);
    free(text);
    free(greeting);
}

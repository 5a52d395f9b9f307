// wordstat.c: a small text and data tool, and this project's example of a real C program as a
// WASI guest. It reads text (the files named on its command line, or standard input), parses
// every token that is a number with strtod, counts the other words, and prints a report: the
// numbers' count, minimum, median, maximum and mean, and the most frequent words.
//
//     wordstat [-n TOP] [FILE...]        exit status 0; 1 when a file cannot be read; 2 for bad usage
//
// Built twice from this one file: as a command (`main`, run with `futures run`) and as a
// reactor exporting `summarize(text)` (run with `futures map` and the pools):
//     futures build-guest --wasi command Guests/wasi/wordstat.c -o wordstat.wasm
//     futures build-guest --wasi reactor Guests/wasi/wordstat.c -o wordstat-reactor.wasm
#define CF_IMPLEMENTATION
#include "cf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct word {
    char *text;
    int count;
};

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int compare_words(const void *a, const void *b) {
    const struct word *x = a, *y = b;
    if (x->count != y->count) return y->count - x->count;
    return strcmp(x->text, y->text);
}

// Appends formatted text to a growing buffer.
struct text {
    char *bytes;
    size_t length, capacity;
};

static void append(struct text *out, const char *format, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void append(struct text *out, const char *format, ...) {
    va_list arguments;
    for (;;) {
        va_start(arguments, format);
        int needed = vsnprintf(out->bytes + out->length, out->capacity - out->length, format, arguments);
        va_end(arguments);
        if (needed < 0) return;
        if (out->length + (size_t)needed < out->capacity) {
            out->length += (size_t)needed;
            return;
        }
        out->capacity = (out->capacity + (size_t)needed) * 2;
        out->bytes = realloc(out->bytes, out->capacity);
    }
}

// The report on `input` (which it modifies), with the `top` most frequent words.
static struct text report(char *input, int top) {
    size_t numberCount = 0, numberCapacity = 16, wordCount = 0, wordCapacity = 16, tokens = 0;
    double *numbers = malloc(numberCapacity * sizeof *numbers);
    struct word *words = malloc(wordCapacity * sizeof *words);
    for (char *token = strtok(input, " \t\r\n"); token; token = strtok(NULL, " \t\r\n")) {
        tokens++;
        char *end;
        double value = strtod(token, &end);
        if (end != token && *end == 0) {
            if (numberCount == numberCapacity) numbers = realloc(numbers, (numberCapacity *= 2) * sizeof *numbers);
            numbers[numberCount++] = value;
            continue;
        }
        for (char *c = token; *c; c++) *c = (char)tolower((unsigned char)*c);
        size_t index = 0;
        while (index < wordCount && strcmp(words[index].text, token)) index++;
        if (index == wordCount) {
            if (wordCount == wordCapacity) words = realloc(words, (wordCapacity *= 2) * sizeof *words);
            words[wordCount++] = (struct word){strdup(token), 0};
        }
        words[index].count++;
    }
    struct text out = {malloc(256), 0, 256};
    out.bytes[0] = 0;
    append(&out, "tokens: %zu\n", tokens);
    if (numberCount > 0) {
        qsort(numbers, numberCount, sizeof *numbers, compare_doubles);
        double sum = 0;
        for (size_t i = 0; i < numberCount; i++) sum += numbers[i];
        double median = numberCount % 2 ? numbers[numberCount / 2]
                                         : (numbers[numberCount / 2 - 1] + numbers[numberCount / 2]) / 2;
        append(&out, "numbers: %zu min %g median %g max %g mean %g\n", numberCount, numbers[0], median,
               numbers[numberCount - 1], sum / (double)numberCount);
    } else {
        append(&out, "numbers: 0\n");
    }
    qsort(words, wordCount, sizeof *words, compare_words);
    append(&out, "words: %zu distinct\n", wordCount);
    for (size_t i = 0; i < wordCount && (int)i < top; i++) append(&out, "  %s %d\n", words[i].text, words[i].count);
    for (size_t i = 0; i < wordCount; i++) free(words[i].text);
    free(words);
    free(numbers);
    return out;
}

// Reads a whole stream.
static char *read_all(FILE *file, size_t *length) {
    size_t capacity = 4096;
    char *bytes = malloc(capacity);
    *length = 0;
    size_t got;
    while ((got = fread(bytes + *length, 1, capacity - *length - 1, file)) > 0) {
        *length += got;
        if (capacity - *length < 2) bytes = realloc(bytes, capacity *= 2);
    }
    bytes[*length] = 0;
    return bytes;
}

// summarize(text): the report on `text`, with the three most frequent words.
CF_EXPORT("summarize") void summarize(const uint8_t *text, int32_t length) {
    char *input = malloc((size_t)length + 1);
    memcpy(input, text, (size_t)length);
    input[length] = 0;
    struct text out = report(input, 3);
    printf("summarized %d bytes\n", (int)length);
    fflush(stdout);
    cf_return_string(out.bytes, (int32_t)out.length);
    free(out.bytes);
    free(input);
}

int main(int argc, char **argv) {
    int top = 3, first = 1;
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        char *end;
        long value = strtol(argv[2], &end, 10);
        if (*end || value < 0) {
            fprintf(stderr, "wordstat: -n needs a count, got '%s'\n", argv[2]);
            return 2;
        }
        top = (int)value;
        first = 3;
    }
    size_t length = 0;
    char *input;
    if (first >= argc) {
        input = read_all(stdin, &length);
    } else {
        input = malloc(1);
        input[0] = 0;
        for (int i = first; i < argc; i++) {
            FILE *file = fopen(argv[i], "r");
            if (!file) {
                fprintf(stderr, "wordstat: %s: %s\n", argv[i], strerror(errno));
                return 1;
            }
            size_t more;
            char *bytes = read_all(file, &more);
            fclose(file);
            input = realloc(input, length + more + 2);
            memcpy(input + length, bytes, more);
            length += more;
            input[length++] = '\n';
            input[length] = 0;
            free(bytes);
        }
    }
    struct text out = report(input, top);
    fputs(out.bytes, stdout);
    return 0;
}

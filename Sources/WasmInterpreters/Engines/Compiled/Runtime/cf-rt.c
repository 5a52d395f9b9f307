/*
 * ConcurrentFutures' runtime for guests compiled by wasm2c: traps, stack limits, memories,
 * tables and the `cf` host imports. Compiled into every compiled guest's shared object, next to
 * the generated code; see wasm-rt.h for the rules it keeps.
 *
 * State: the jump buffer of the innermost guest run and the stack bounds are thread-local; the
 * function-type registry is filled once, when the host initializes the shared object, and only
 * read afterwards; everything else lives in the instance or its header.
 */
#define _GNU_SOURCE
#include "wasm-rt.h"

#include <execinfo.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/mman.h>

/* Indices of the host's functions, in the order of the host's table. */
enum {
  CF_RETURN_VALUE,
  CF_RETURN_STRING,
  CF_RETURN_BYTES,
  CF_LOG,
  CF_WRITE,
  CF_QUEUE_PUT_INT,
  CF_QUEUE_GET_INT,
  CF_QUEUE_PUT,
  CF_QUEUE_GET,
  CF_QUEUE_COUNT,
  CF_INTERPRETER_ID,
  /*
   * Not imports: the host's checks of memory and table sizes, which also charge their fuel.
   * CF_ADMIT_MEMORY(new bytes, grown bytes); CF_ADMIT_TABLE(new elements, grown elements,
   * bytes per element). The WASI functions a module imports follow from CF_WASI_BASE (the glue
   * defines their stubs).
   */
  CF_ADMIT_MEMORY = 64,
  CF_ADMIT_TABLE = 65,
};

/*
 * Bytes of stack kept free below the limit the prologues check: 128 KiB for host functions and
 * the trap path, and 64 KiB for the frame of the function whose prologue checks (its locals are
 * below the frame address it compares; no compiled function may have a larger frame, see
 * CompiledLibrary's compiler flags).
 */
#define CF_STACK_RESERVE (192u << 10)

/* The host's fault handler reads target and current (CFuturesShims keeps the same layout). */
typedef struct {
  jmp_buf *target;
  cf_instance_header *current;
  uintptr_t stack_low;
} cf_thread_state;
_Static_assert(offsetof(cf_instance_header, memory_base) == 40, "the fault handler reads memory_base at offset 40");

/*
 * The calling thread's state, kept by the host (one block per thread for all compiled guests, so
 * that this shared object needs no thread-local storage of its own). Set once, by
 * cf_runtime_init, before any guest code runs.
 */
static void *(*cf_thread_state_of)(void);
#define cf_thread (*(cf_thread_state *)cf_thread_state_of())

void cf_runtime_init(void *(*thread_state)(void)) {
  cf_thread_state_of = thread_state;
  /* The first backtrace loads the unwinder: here, on the host's stack, not on a trap's. */
  void *frame;
  (void)backtrace(&frame, 1);
}

static uintptr_t cf_stack_low(void) {
  if (cf_thread.stack_low == 0) {
    pthread_attr_t attributes;
    void *address = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attributes) == 0) {
      pthread_attr_getstack(&attributes, &address, &size);
      pthread_attr_destroy(&attributes);
    }
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    uintptr_t low = (uintptr_t)address;
    /* Unknown bounds: assume 1 MiB below this frame. */
    if (low == 0 || low >= here) low = here > (1u << 20) ? here - (1u << 20) : 0;
    cf_thread.stack_low = low + CF_STACK_RESERVE;
  }
  return cf_thread.stack_low;
}

int cf_run(cf_instance_header *header, uintptr_t stack_budget, void (*body)(void *), void *argument) {
  cf_thread_state *thread = &cf_thread;
  jmp_buf buffer;
  jmp_buf *outer_target = thread->target;
  cf_instance_header *outer_current = thread->current;
  uintptr_t outer_limit = header->stack_limit;
  uint32_t outer_depth = header->depth;
  if (outer_limit == 0) {
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    uintptr_t low = cf_stack_low();
    uintptr_t limit = here > stack_budget ? here - stack_budget : 0;
    header->stack_limit = limit > low ? limit : low;
  }
  thread->target = &buffer;
  thread->current = header;
  header->trap_function = NULL;
  header->trap_frame_count = 0;
  int trap = setjmp(buffer);
  if (trap == 0) body(argument);
  thread->target = outer_target;
  thread->current = outer_current;
  header->stack_limit = outer_limit;
  header->depth = outer_depth;
  return trap;
}

int cf_guard(void (*body)(void *), void *argument) {
  cf_thread_state *thread = &cf_thread;
  jmp_buf buffer;
  jmp_buf *outer_target = thread->target;
  thread->target = &buffer;
  int trap = setjmp(buffer);
  if (trap == 0) body(argument);
  thread->target = outer_target;
  return trap;
}

void cf_trap_in(wasm_rt_trap_t code, const char *function) {
  cf_instance_header *header = cf_thread.current;
  if (header != NULL) {
    header->trap_function = function;
    /* The stack as it is before the jump (the trap path only; nothing on the hot path). */
    header->trap_frame_count = header->trap_frames != NULL ? (uint32_t)backtrace(header->trap_frames, CF_TRAP_FRAMES) : 0;
  }
  (wasm_rt_trap)(code);
}

void(wasm_rt_trap)(wasm_rt_trap_t code) {
  jmp_buf *target = cf_thread.target;
  /*
   * Every entry point of a compiled guest (cf_module_init, cf_instantiate, cf_call, cf_release)
   * runs under cf_run or cf_guard, so a trap always has a target: this stop is unreachable by
   * construction, and it is the runtime's only one (no abort, no exit).
   */
  if (target == NULL) __builtin_trap();
  longjmp(*target, code == WASM_RT_TRAP_NONE ? CF_TRAP_HOST : (int)code);
}

/* Calls the host; a host function that failed has kept its error, and the guest traps. */
uint64_t cf_host(cf_instance_header *header, uint32_t index, const uint64_t *arguments) {
  uint64_t result = 0;
  if (header == NULL || header->dispatch == NULL) wasm_rt_trap(CF_TRAP_HOST);
  if (header->dispatch(header->context, index, arguments, &result) != 0) wasm_rt_trap(CF_TRAP_HOST);
  return result;
}

void wasm_rt_init(void) {}
bool wasm_rt_is_initialized(void) { return true; }
void wasm_rt_free(void) {}

const char *wasm_rt_strerror(wasm_rt_trap_t trap) {
  switch (trap) {
    case WASM_RT_TRAP_NONE: return "no trap";
    case WASM_RT_TRAP_OOB: return "out of bounds memory access";
    case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
    case WASM_RT_TRAP_DIV_BY_ZERO: return "integer divide by zero";
    case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case WASM_RT_TRAP_UNREACHABLE: return "unreachable";
    case WASM_RT_TRAP_CALL_INDIRECT: return "indirect call type mismatch";
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
    case WASM_RT_TRAP_EXHAUSTION: return "call stack exhausted";
    case CF_TRAP_HOST: return "host function failed";
    case CF_TRAP_ALLOCATION: return "out of host memory";
    case WASM_RT_TRAP_TOB: return "out of bounds table access";
  }
  return "trap";
}

/*
 * Function types, registered once per shared object by its initializer (under the host's lock
 * for the module): ids start at 1 and are equal exactly when the types are. A hash table over a
 * growing array, so that any number of types registers in linear time; a failed allocation traps
 * (CF_TRAP_ALLOCATION) to the initializer's guard, which the host reports as an error.
 */
typedef struct {
  uint32_t params, results;
  uint64_t hash;
  wasm_rt_type_t *types;
} cf_func_type;
static cf_func_type *cf_func_types;   /* by id - 1 */
static uint32_t cf_func_type_count, cf_func_type_capacity;
static uint32_t *cf_func_type_slots;  /* open addressing: id, or 0 when empty */
static uint32_t cf_func_type_slot_count;

static uint64_t cf_func_type_hash(uint32_t params, uint32_t results, const wasm_rt_type_t *types) {
  uint64_t hash = 0xcbf29ce484222325ull ^ ((uint64_t)params << 32 | results);
  for (uint32_t i = 0; i < params + results; i++) hash = (hash ^ (uint64_t)types[i]) * 0x100000001b3ull;
  return hash ^ (hash >> 29);
}

static void cf_func_type_slots_grow(void) {
  uint32_t count = cf_func_type_slot_count ? cf_func_type_slot_count * 2 : 256;
  if (count < cf_func_type_slot_count) wasm_rt_trap(CF_TRAP_ALLOCATION);
  uint32_t *slots = calloc(count, sizeof(uint32_t));
  if (slots == NULL) wasm_rt_trap(CF_TRAP_ALLOCATION);
  for (uint32_t id = 1; id <= cf_func_type_count; id++) {
    uint32_t slot = (uint32_t)cf_func_types[id - 1].hash & (count - 1);
    while (slots[slot] != 0) slot = (slot + 1) & (count - 1);
    slots[slot] = id;
  }
  free(cf_func_type_slots);
  cf_func_type_slots = slots;
  cf_func_type_slot_count = count;
}

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...) {
  uint32_t count = params + results;
  if (count < params) wasm_rt_trap(CF_TRAP_ALLOCATION);
  wasm_rt_type_t *types = calloc(count ? count : 1, sizeof(wasm_rt_type_t));
  if (types == NULL) wasm_rt_trap(CF_TRAP_ALLOCATION);
  va_list list;
  va_start(list, results);
  for (uint32_t i = 0; i < count; i++) types[i] = (wasm_rt_type_t)va_arg(list, int);
  va_end(list);
  uint64_t hash = cf_func_type_hash(params, results, types);
  /* At most half full. */
  if ((uint64_t)(cf_func_type_count + 1) * 2 > cf_func_type_slot_count) cf_func_type_slots_grow();
  uint32_t mask = cf_func_type_slot_count - 1;
  uint32_t slot = (uint32_t)hash & mask;
  for (; cf_func_type_slots[slot] != 0; slot = (slot + 1) & mask) {
    cf_func_type *known = &cf_func_types[cf_func_type_slots[slot] - 1];
    if (known->hash == hash && known->params == params && known->results == results &&
        memcmp(known->types, types, count * sizeof(wasm_rt_type_t)) == 0) {
      free(types);
      return cf_func_type_slots[slot];
    }
  }
  if (cf_func_type_count == cf_func_type_capacity) {
    uint32_t capacity = cf_func_type_capacity ? cf_func_type_capacity * 2 : 64;
    cf_func_type *grown = capacity > cf_func_type_capacity ? realloc(cf_func_types, (size_t)capacity * sizeof(cf_func_type)) : NULL;
    if (grown == NULL) {
      free(types);
      wasm_rt_trap(CF_TRAP_ALLOCATION);
    }
    cf_func_types = grown;
    cf_func_type_capacity = capacity;
  }
  cf_func_types[cf_func_type_count] = (cf_func_type){params, results, hash, types};
  cf_func_type_slots[slot] = ++cf_func_type_count;
  return cf_func_type_count;
}

/*
 * Memories: each at the start of a reserved range (see wasm-rt.h) of which only the memory's
 * size is accessible; growing makes more of it accessible in place. The host admits every size
 * first. The kernel zeroes the pages, and counts only those touched.
 */
#define CF_PAGE 65536ull
#define CF_MEMORY_RESERVE ((8ull << 30) + CF_PAGE)

static bool cf_admit(uint32_t what, uint64_t size, uint64_t grown, uint64_t element_bytes) {
  uint64_t arguments[3] = {size, grown, element_bytes};
  return cf_host(cf_thread.current, what, arguments) != 0;
}

/* The start of every allocation: the limits, and the host's admission of the initial size. */
static uint64_t cf_memory_begin(wasm_rt_memory_t *memory, uint32_t initial_pages, uint32_t max_pages) {
  uint64_t bytes = (uint64_t)initial_pages * CF_PAGE;
  memory->data = NULL;
  memory->pages = 0;
  memory->max_pages = max_pages > 65536 ? 65536 : max_pages;
  memory->size = 0;
  if (!cf_admit(CF_ADMIT_MEMORY, bytes, 0, 0)) wasm_rt_trap(CF_TRAP_ALLOCATION);
  return bytes;
}

/*
 * As WasmKit does: a growth within the maximum asks the host (which charges fuel for the new
 * size), even by zero pages; one that happened then pays for the bytes added. A growth the system
 * refuses after the host admitted the size leaves the host's count high (it only over-counts).
 * Returns the new size, or UINT64_MAX when the growth is refused.
 */
static uint64_t cf_memory_admit_growth(wasm_rt_memory_t *memory, uint32_t delta) {
  uint64_t new_pages = (uint64_t)memory->pages + delta;
  if (new_pages > memory->max_pages || new_pages > 65536) return UINT64_MAX;
  uint64_t new_size = new_pages * CF_PAGE;
  if (!cf_admit(CF_ADMIT_MEMORY, new_size, (uint64_t)delta * CF_PAGE, 0)) return UINT64_MAX;
  return new_size;
}

#ifndef CF_BOUNDS_CHECKS
void wasm_rt_allocate_memory(wasm_rt_memory_t *memory, uint32_t initial_pages, uint32_t max_pages) {
  uint64_t bytes = cf_memory_begin(memory, initial_pages, max_pages);
  void *range = mmap(NULL, CF_MEMORY_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (range == MAP_FAILED) wasm_rt_trap(CF_TRAP_ALLOCATION);
  if (bytes > 0 && mprotect(range, bytes, PROT_READ | PROT_WRITE) != 0) {
    munmap(range, CF_MEMORY_RESERVE);
    wasm_rt_trap(CF_TRAP_ALLOCATION);
  }
  memory->data = range;
  memory->pages = initial_pages;
  memory->size = bytes;
  if (cf_thread.current != NULL) cf_thread.current->memory_base = range;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
  uint32_t old_pages = memory->pages;
  uint64_t new_size = cf_memory_admit_growth(memory, delta);
  if (new_size == UINT64_MAX) return UINT32_MAX;
  if (delta == 0) return old_pages;
  if (mprotect(memory->data + memory->size, new_size - memory->size, PROT_READ | PROT_WRITE) != 0) return UINT32_MAX;
  memory->pages = (uint32_t)(new_size / CF_PAGE);
  memory->size = new_size;
  return old_pages;
}

void wasm_rt_free_memory(wasm_rt_memory_t *memory) {
  if (memory->data != NULL) munmap(memory->data, CF_MEMORY_RESERVE);
  memory->data = NULL;
  memory->size = 0;
  memory->pages = 0;
}
#else
/*
 * With explicit bounds checks (a host whose fault signals belong to a sanitizer): plain heap
 * blocks, grown by copying.
 */
void wasm_rt_allocate_memory(wasm_rt_memory_t *memory, uint32_t initial_pages, uint32_t max_pages) {
  uint64_t bytes = cf_memory_begin(memory, initial_pages, max_pages);
  if (bytes > 0) {
    memory->data = calloc(bytes, 1);
    if (memory->data == NULL) wasm_rt_trap(CF_TRAP_ALLOCATION);
  }
  memory->pages = initial_pages;
  memory->size = bytes;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
  uint32_t old_pages = memory->pages;
  uint64_t new_size = cf_memory_admit_growth(memory, delta);
  if (new_size == UINT64_MAX) return UINT32_MAX;
  if (delta == 0) return old_pages;
  uint8_t *data = realloc(memory->data, new_size);
  if (data == NULL) return UINT32_MAX;
  memset(data + memory->size, 0, new_size - memory->size);
  memory->data = data;
  memory->pages = (uint32_t)(new_size / CF_PAGE);
  memory->size = new_size;
  return old_pages;
}

void wasm_rt_free_memory(wasm_rt_memory_t *memory) {
  free(memory->data);
  memory->data = NULL;
  memory->size = 0;
  memory->pages = 0;
}
#endif

/*
 * Tables: the host counts their elements, at their real size, against the interpreter's memory
 * limit, and charges fuel as for WasmKit's tables.
 */
#define CF_DEFINE_TABLE(kind, element, null)                                                        \
  void wasm_rt_allocate_##kind##_table(wasm_rt_##kind##_table_t *table, uint32_t elements,         \
                                       uint32_t max_elements) {                                   \
    table->data = NULL;                                                                            \
    table->size = 0;                                                                               \
    table->max_size = max_elements;                                                                \
    if (!cf_admit(CF_ADMIT_TABLE, elements, 0, sizeof(element))) wasm_rt_trap(CF_TRAP_ALLOCATION); \
    if (elements > 0) {                                                                            \
      table->data = calloc(elements, sizeof(element));                                             \
      if (table->data == NULL) wasm_rt_trap(CF_TRAP_ALLOCATION);                                   \
    }                                                                                              \
    table->size = elements;                                                                        \
  }                                                                                                \
  uint32_t wasm_rt_grow_##kind##_table(wasm_rt_##kind##_table_t *table, uint32_t delta,            \
                                       element init) {                                             \
    uint32_t old_size = table->size;                                                               \
    uint64_t new_size = (uint64_t)old_size + delta;                                                \
    if (new_size > table->max_size) return UINT32_MAX;                                             \
    if (!cf_admit(CF_ADMIT_TABLE, new_size, delta, sizeof(element))) return UINT32_MAX;            \
    if (delta == 0) return old_size;                                                               \
    element *data = realloc(table->data, new_size * sizeof(element));                              \
    if (data == NULL) return UINT32_MAX;                                                           \
    for (uint64_t i = old_size; i < new_size; i++) data[i] = init;                                 \
    table->data = data;                                                                            \
    table->size = (uint32_t)new_size;                                                              \
    return old_size;                                                                               \
  }                                                                                                \
  void wasm_rt_free_##kind##_table(wasm_rt_##kind##_table_t *table) {                              \
    free(table->data);                                                                             \
    table->data = NULL;                                                                            \
    table->size = 0;                                                                               \
  }

CF_DEFINE_TABLE(funcref, wasm_rt_funcref_t, wasm_rt_funcref_null_value)
CF_DEFINE_TABLE(externref, wasm_rt_externref_t, wasm_rt_externref_null_value)

/* The `cf` imports: each packs its arguments and calls the host through the instance's table. */
struct Z_cf_instance_t {
  cf_instance_header header;
};

#define CF_ARGS(...) uint64_t arguments[] = {__VA_ARGS__}

void Z_cfZ_return_value(struct Z_cf_instance_t *instance, uint32_t pointer, uint32_t count) {
  CF_ARGS(pointer, count);
  cf_host(CF_HEADER_OF(instance), CF_RETURN_VALUE, arguments);
}
void Z_cfZ_return_string(struct Z_cf_instance_t *instance, uint32_t pointer, uint32_t count) {
  CF_ARGS(pointer, count);
  cf_host(CF_HEADER_OF(instance), CF_RETURN_STRING, arguments);
}
void Z_cfZ_return_bytes(struct Z_cf_instance_t *instance, uint32_t pointer, uint32_t count) {
  CF_ARGS(pointer, count);
  cf_host(CF_HEADER_OF(instance), CF_RETURN_BYTES, arguments);
}
void Z_cfZ_log(struct Z_cf_instance_t *instance, uint32_t pointer, uint32_t count) {
  CF_ARGS(pointer, count);
  cf_host(CF_HEADER_OF(instance), CF_LOG, arguments);
}
uint32_t Z_cfZ_write(struct Z_cf_instance_t *instance, uint32_t fd, uint32_t pointer, uint32_t count) {
  CF_ARGS(fd, pointer, count);
  return (uint32_t)cf_host(CF_HEADER_OF(instance), CF_WRITE, arguments);
}
uint32_t Z_cfZ_queue_put_int(struct Z_cf_instance_t *instance, uint32_t queue, uint64_t value, uint64_t timeout) {
  CF_ARGS(queue, value, timeout);
  return (uint32_t)cf_host(CF_HEADER_OF(instance), CF_QUEUE_PUT_INT, arguments);
}
uint32_t Z_cfZ_queue_get_int(struct Z_cf_instance_t *instance, uint32_t queue, uint64_t timeout, uint32_t out) {
  CF_ARGS(queue, timeout, out);
  return (uint32_t)cf_host(CF_HEADER_OF(instance), CF_QUEUE_GET_INT, arguments);
}
uint32_t Z_cfZ_queue_put(struct Z_cf_instance_t *instance, uint32_t queue, uint32_t pointer, uint32_t count,
                         uint64_t timeout) {
  CF_ARGS(queue, pointer, count, timeout);
  return (uint32_t)cf_host(CF_HEADER_OF(instance), CF_QUEUE_PUT, arguments);
}
uint32_t Z_cfZ_queue_get(struct Z_cf_instance_t *instance, uint32_t queue, uint64_t timeout, uint32_t out) {
  CF_ARGS(queue, timeout, out);
  return (uint32_t)cf_host(CF_HEADER_OF(instance), CF_QUEUE_GET, arguments);
}
uint64_t Z_cfZ_queue_count(struct Z_cf_instance_t *instance, uint32_t queue) {
  CF_ARGS(queue);
  return cf_host(CF_HEADER_OF(instance), CF_QUEUE_COUNT, arguments);
}
uint64_t Z_cfZ_interpreter_id(struct Z_cf_instance_t *instance) {
  CF_ARGS(0);
  return cf_host(CF_HEADER_OF(instance), CF_INTERPRETER_ID, arguments);
}

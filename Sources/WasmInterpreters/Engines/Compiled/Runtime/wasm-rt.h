/*
 * The runtime interface that wasm2c's generated C is compiled against, for ConcurrentFutures'
 * compiled engine. Written for this project (it replaces the header wabt ships): the types and
 * functions keep the names the generated code uses, and the state behind them is per instance
 * or per thread, never per process.
 *
 * - A linear memory lives at the start of its own reserved range of address space, 8 GiB and a
 *   guard page: every address a load or store can form (a 32-bit index plus a 32-bit offset)
 *   falls inside it, and what lies past the memory's size is inaccessible. So loads and stores
 *   carry no bounds check; one out of bounds faults, and the host's fault handler
 *   (cf_guest_faults_install in CFuturesShims) turns a fault inside the current instance's range
 *   into the trap WASM_RT_TRAP_OOB, passing every other fault to the handler before it. Bulk
 *   operations (memory.fill, memory.copy, memory.init) still check their ranges explicitly.
 * - Call depth is bounded by the native stack: every generated function's prologue compares its
 *   frame address with a limit kept in the instance's header, and traps with
 *   WASM_RT_TRAP_EXHAUSTION below it.
 * - A trap unwinds to the innermost cf_run() on the current thread (its jump buffer is kept in a
 *   per-thread block the host provides).
 */
#ifndef WASM_RT_H_
#define WASM_RT_H_

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define wasm_rt_memcpy __builtin_memcpy
#define wasm_rt_unreachable __builtin_unreachable
#define WASM_RT_NO_RETURN __attribute__((noreturn))

/*
 * Guard pages for loads and stores (above), and call depth checked in every function prologue.
 * A host whose fault signals belong to a sanitizer builds with CF_BOUNDS_CHECKS: explicit checks.
 */
#ifdef CF_BOUNDS_CHECKS
#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 0
#else
#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 1
#endif
#define WASM_RT_SKIP_SIGNAL_RECOVERY 1
#define WASM_RT_SIGNAL_RECOVERY_SUPPORTED 0
#define WASM_RT_USE_STACK_DEPTH_COUNT 1
#define WASM_RT_MERGED_OOB_AND_EXHAUSTION_TRAPS 0

/* What a host function reports to the stub that called it. */
typedef int (*cf_host_dispatch)(void *context, uint32_t index, const uint64_t *arguments, uint64_t *result);

/*
 * The header the host places immediately before every module instance (see cf_box in the
 * generated glue). Aligned to 64 bytes so that the instance follows it without padding.
 */
typedef struct __attribute__((aligned(64))) cf_instance_header {
  /*
   * The header's own address. Imported functions receive it directly when called, but wasm2c
   * 1.0.32 gives a table entry for an import the address of the instance's field that holds it:
   * reading the first word of what they receive gives the header either way.
   */
  struct cf_instance_header *self;
  /* Guest frames below this address trap: the stack budget of the call in progress. */
  uintptr_t stack_limit;
  /* The nesting depth of guest functions (kept for the generated prologue). */
  uint32_t depth;
  /* How many return addresses the last trap recorded in trap_frames. */
  uint32_t trap_frame_count;
  /* The host's functions and their context. */
  cf_host_dispatch dispatch;
  void *context;
  /*
   * The start of the instance's linear memory's reserved range (NULL without one): the host's
   * fault handler reads it (offset 40; see CFuturesShims).
   */
  uint8_t *memory_base;
  /*
   * The C name of the generated function that raised the last trap through wasm_rt_trap (its
   * `__func__`, so also when the optimizer inlined it into its caller), or NULL: cleared by
   * cf_run, set only on the trap path. The host maps it to the guest function's name.
   */
  const char *trap_function;
  /*
   * Where a trap records the native return addresses of the stack (CF_TRAP_FRAMES of them, the
   * host's buffer), for the host to name the guest functions on it; NULL records none.
   */
  void **trap_frames;
} cf_instance_header;
_Static_assert(sizeof(cf_instance_header) == 64, "the header keeps its size");

/* How many return addresses a trap records. */
#define CF_TRAP_FRAMES 64

#define CF_HEADER(instance) ((cf_instance_header *)((char *)(instance) - sizeof(cf_instance_header)))

/*
 * The generated prologue reads `if (++wasm_rt_call_stack_depth > WASM_RT_MAX_CALL_STACK_DEPTH)
 * trap`; with these definitions it counts depth in the instance and traps when the frame lies
 * below the stack limit.
 */
#define wasm_rt_call_stack_depth (CF_HEADER(instance)->depth)
#define WASM_RT_MAX_CALL_STACK_DEPTH \
  ((uintptr_t)__builtin_frame_address(0) < CF_HEADER(instance)->stack_limit ? 0u : UINT32_MAX)

typedef enum {
  WASM_RT_TRAP_NONE,
  WASM_RT_TRAP_OOB,
  WASM_RT_TRAP_INT_OVERFLOW,
  WASM_RT_TRAP_DIV_BY_ZERO,
  WASM_RT_TRAP_INVALID_CONVERSION,
  WASM_RT_TRAP_UNREACHABLE,
  WASM_RT_TRAP_CALL_INDIRECT,
  WASM_RT_TRAP_UNCAUGHT_EXCEPTION,
  WASM_RT_TRAP_EXHAUSTION,
  /* This runtime's own: a host function failed (the host keeps the error). */
  CF_TRAP_HOST = 100,
  /* The host could not allocate memory or a table. */
  CF_TRAP_ALLOCATION = 101,
  /*
   * A table access out of bounds (`table.get`, `table.set`, `table.init`, `table.copy`,
   * `table.fill`), which wasm2c reports as OOB like a memory access: the build renames it in the
   * generated table helpers (TRAP(OOB) becomes TRAP(TOB)), so that it is told apart as WasmKit does.
   */
  WASM_RT_TRAP_TOB = 102,
} wasm_rt_trap_t;

typedef enum {
  WASM_RT_I32,
  WASM_RT_I64,
  WASM_RT_F32,
  WASM_RT_F64,
  WASM_RT_FUNCREF,
  WASM_RT_EXTERNREF,
} wasm_rt_type_t;

typedef void (*wasm_rt_function_ptr_t)(void);

typedef struct {
  uint32_t func_type;
  wasm_rt_function_ptr_t func;
  void *module_instance;
} wasm_rt_funcref_t;

static const wasm_rt_funcref_t wasm_rt_funcref_null_value = {0, NULL, NULL};

typedef void *wasm_rt_externref_t;
static const wasm_rt_externref_t wasm_rt_externref_null_value = NULL;

/* A linear memory. `size` is 64-bit so that a full 4 GiB memory is representable. */
typedef struct {
  uint8_t *data;
  uint32_t pages, max_pages;
  uint64_t size;
} wasm_rt_memory_t;

typedef struct {
  wasm_rt_funcref_t *data;
  uint32_t max_size;
  uint32_t size;
} wasm_rt_funcref_table_t;

typedef struct {
  wasm_rt_externref_t *data;
  uint32_t max_size;
  uint32_t size;
} wasm_rt_externref_table_t;

void wasm_rt_init(void);
bool wasm_rt_is_initialized(void);
void wasm_rt_free(void);
WASM_RT_NO_RETURN void wasm_rt_trap(wasm_rt_trap_t);
/*
 * Traps with `code`, recording `function` (a C function's `__func__`) in the running instance's
 * header. Every wasm_rt_trap the generated code writes becomes a call of this: the name costs
 * one more argument on the trap path only, nothing where no trap happens.
 */
WASM_RT_NO_RETURN void cf_trap_in(wasm_rt_trap_t code, const char *function);
#define wasm_rt_trap(code) cf_trap_in((code), __func__)
const char *wasm_rt_strerror(wasm_rt_trap_t trap);
uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...);

void wasm_rt_allocate_memory(wasm_rt_memory_t *, uint32_t initial_pages, uint32_t max_pages);
uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *, uint32_t pages);
void wasm_rt_free_memory(wasm_rt_memory_t *);
void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *, uint32_t elements, uint32_t max_elements);
void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *);
void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t *, uint32_t elements, uint32_t max_elements);
void wasm_rt_free_externref_table(wasm_rt_externref_table_t *);
uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t *, uint32_t delta, wasm_rt_funcref_t init);
uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t *, uint32_t delta, wasm_rt_externref_t init);

/*
 * Runs body(argument) as guest code on this thread: a trap anywhere inside returns its code
 * (0 when none), and the instance's header is as it was before. Nested runs (a host function
 * calling back into the guest) keep the outer run's stack limit.
 */
int cf_run(cf_instance_header *header, uintptr_t stack_budget, void (*body)(void *), void *argument);

/*
 * Runs body(argument) with a jump target for traps but no instance (the module's initializer,
 * an instance's release): returns the trap code, 0 when none.
 */
int cf_guard(void (*body)(void *), void *argument);

/* Gives the runtime the host's per-thread state block (at least 64 bytes, one per thread). */
void cf_runtime_init(void *(*thread_state)(void));

/*
 * Calls host function `index` for the instance whose header is `header`, with its arguments as
 * 64-bit slots; returns its result. A host function that fails makes the guest trap.
 */
uint64_t cf_host(cf_instance_header *header, uint32_t index, const uint64_t *arguments);

/* The header an import was called with (see `self` above). */
#define CF_HEADER_OF(instance) ((*(cf_instance_header **)(instance)))

/* The host index of the first WASI function a module imports (the glue numbers the rest). */
#define CF_WASI_BASE 128u
/* The host index of the first function a module imports from its linker (host functions). */
#define CF_IMPORT_BASE 4096u

#ifdef __cplusplus
}
#endif

#endif /* WASM_RT_H_ */

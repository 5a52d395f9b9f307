/* setjmp.h for wasm32-wasi programs built with this wasi-libc, which has none (WebAssembly without
   exception handling cannot unwind the stack). setjmp returns 0; longjmp ends the program with a
   message. A program that only jumps on errors runs as it does natively until its first error. */
#ifndef CF_COMPAT_SETJMP_H
#define CF_COMPAT_SETJMP_H
typedef int jmp_buf[1];
typedef int sigjmp_buf[1];
_Noreturn void cf_compat_longjmp(void);
#define setjmp(env) ((void)(env), 0)
#define _setjmp(env) ((void)(env), 0)
#define sigsetjmp(env, save) ((void)(env), (void)(save), 0)
#define longjmp(env, value) ((void)(env), (void)(value), cf_compat_longjmp())
#define _longjmp(env, value) longjmp(env, value)
#define siglongjmp(env, value) longjmp(env, value)
#endif

/* C++ exceptions in the pandas flavour's extension modules (numpy's and pandas' C++ parts).
 *
 * Debian's libc++abi for wasm32-wasi is built without exception support, so it lacks the two
 * functions a `throw` calls. wasmtime 48 implements only the new (exnref) encoding of wasm
 * exception handling while clang 19 emits the legacy one, so the code is compiled without
 * unwinding: a throw cannot be caught anyway. It ends the instance with a message instead of
 * an undefined import; the host reports the trap as the handler's failure. */
#include <stdio.h>
#include <stdlib.h>

void *__cxa_allocate_exception(unsigned long size) {
    (void)size;
    fputs("pubfn: a C++ exception was thrown in an extension module; WASI builds cannot "
          "unwind, so the call ends here\n", stderr);
    abort();
}

void __cxa_throw(void *exception, void *type, void (*destructor)(void *)) {
    (void)exception;
    (void)type;
    (void)destructor;
    abort();
}

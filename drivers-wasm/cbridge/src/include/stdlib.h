/* Freestanding stand-in for <stdlib.h>: what wit-bindgen's C output uses.
   Implemented in rt.c; the component imports no libc and no WASI. */
#ifndef CBRIDGE_STDLIB_H
#define CBRIDGE_STDLIB_H
#include <stddef.h>
void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *realloc(void *ptr, size_t size);
void free(void *ptr);
_Noreturn void abort(void);
#endif

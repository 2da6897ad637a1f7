/* The little runtime the driver needs instead of a libc: an arena allocator
   and the memory functions. Nothing here imports anything, so the core module
   needs no WASI (the host offers none).

   The allocator bumps a pointer through linear memory (growing it as needed)
   and counts live allocations. Every export frees what it was given and the
   post-return functions free what it returned, so between calls the count is
   zero and the arena starts again at __heap_base: memory stays bounded by the
   largest single call, not by the number of calls. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern unsigned char __heap_base;

static uintptr_t heap_next = 0;
static uintptr_t last_ptr = 0;   /* the most recent allocation, which realloc may grow in place */
static size_t last_size = 0;
static size_t live = 0;

_Noreturn void abort(void) { __builtin_trap(); }

static uintptr_t heap_start(void) { return ((uintptr_t)&__heap_base + 15) & ~(uintptr_t)15; }

static void *bump(size_t size) {
  if (heap_next == 0) heap_next = heap_start();
  uintptr_t p = (heap_next + 7) & ~(uintptr_t)7;
  uintptr_t end = p + size;
  if (end < p) abort();
  uintptr_t limit = (uintptr_t)__builtin_wasm_memory_size(0) * 65536u;
  if (end > limit) {
    size_t pages = (end - limit + 65535u) / 65536u;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) abort();
  }
  heap_next = end;
  last_ptr = p;
  last_size = size;
  return (void *)p;
}

void *malloc(size_t size) {
  void *p = bump(size ? size : 1);
  live++;
  return p;
}

void *calloc(size_t n, size_t size) {
  size_t total = n * size;
  if (size && total / size != n) abort();
  void *p = malloc(total);
  memset(p, 0, total);
  return p;
}

void *realloc(void *ptr, size_t size) {
  if (ptr == NULL) return malloc(size);
  if ((uintptr_t)ptr == last_ptr) {
    /* the newest block: grow or shrink it where it is */
    heap_next = last_ptr;
    size_t old = last_size;
    void *p = bump(size ? size : 1);
    (void)old;
    return p;
  }
  /* older block: its size is unknown, but it ends before last_ptr; copy what fits */
  size_t avail = last_ptr - (uintptr_t)ptr;
  void *p = bump(size ? size : 1);
  memcpy(p, ptr, size < avail ? size : avail);
  return p;
}

void free(void *ptr) {
  /* cabi_realloc hands out `align` (1, 2, 4, 8) for empty blocks: not ours */
  if ((uintptr_t)ptr < heap_start() || live == 0) return;
  if (--live == 0) {
    heap_next = heap_start();
    last_ptr = 0;
    last_size = 0;
  }
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (d < s) {
    while (n--) *d++ = *s++;
  } else {
    d += n;
    s += n;
    while (n--) *--d = *--s;
  }
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++) {
    if (*x != *y) return *x < *y ? -1 : 1;
  }
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/*
 * The WebAssembly peer: the C library's malloc family exported to JavaScript. Built by
 * bench/wasm-dlmalloc.ts with clang for wasm32-wasi against the system's wasi-libc (Debian's
 * wasi-libc, whose malloc is Doug Lea's dlmalloc), over a shared, imported WebAssembly.Memory,
 * which is what a JavaScript program that wants a C allocator in shared memory would use.
 * Nothing here allocates by itself; the four calls go straight to the library.
 */
#include <stdlib.h>

__attribute__((export_name("wasm_malloc"))) void *wasm_malloc(size_t n) { return malloc(n); }
__attribute__((export_name("wasm_free"))) void wasm_free(void *p) { free(p); }
__attribute__((export_name("wasm_realloc"))) void *wasm_realloc(void *p, size_t n) { return realloc(p, n); }
__attribute__((export_name("wasm_calloc"))) void *wasm_calloc(size_t n, size_t s) { return calloc(n, s); }

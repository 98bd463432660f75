/* The greeter, except that it reads its greeting from the Spin variable `greeting`
 * (fermyon:spin/variables@2.0.0) instead of the environment. Built into a component that
 * exports wasi:http/incoming-handler but imports a Spin interface, so a host without Spin
 * (wasmtime serve, wasmkube's wasmtime shim) must refuse it at instantiation, naming the import.
 */
#include <stddef.h>
#include <stdint.h>

typedef struct { /* result<string, error>: tag byte, then the ok string at offset 4 */
    uint8_t is_err;
    const char *ptr;
    size_t len;
} spin_result;

__attribute__((import_module("fermyon:spin/variables@2.0.0"), import_name("get"))) extern void spin_variables_get(
    const char *name, size_t name_len, spin_result *ret);

static int spin_greeting(const char **value, size_t *len);
#define GREETER_FIND_GREETING spin_greeting
#include "greeter.c"

static int spin_greeting(const char **value, size_t *len) {
    spin_result result;
    spin_variables_get("greeting", 8, &result);
    if (result.is_err) return 0;
    *value = result.ptr;
    *len = result.len;
    return 1;
}

/* greeter: a wasi:http/incoming-handler@0.2.0 component in plain C, with no SDK and no adapter.
 *
 * The imports are declared by hand in the canonical ABI's core form (what
 * `wasm-tools component embed --dummy-names legacy greeter.wit -t` prints), so the core module
 * imports exactly the WASI 0.2 functions below and nothing from WASI preview 1; `wasm-tools
 * component new` then wraps it without an adapter. The routes live in routes.h. See README.md.
 *
 * Built with -DGREETER_VERSION='"v2"' and -DHEALTHZ_STATUS=503 it becomes another image.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "routes.h"

#define IMPORT(module, name) __attribute__((import_module(module), import_name(name))) extern
#define HTTP "wasi:http/types@0.2.0"
#define STREAMS "wasi:io/streams@0.2.0"

typedef int32_t handle;

typedef struct {
    const char *ptr;
    size_t len;
} wit_string;

typedef struct {
    wit_string key, value;
} env_var;

typedef struct {
    env_var *ptr;
    size_t len;
} env_list;

typedef struct { /* option<string> */
    uint8_t is_some;
    wit_string value;
} option_string;

typedef struct { /* result<own<T>, small-error>: tag byte, then the handle at offset 4 */
    uint8_t is_err;
    handle value;
} result_handle;

typedef struct { /* tuple<field-key, field-value>: a string and a list<u8> */
    wit_string name;
    const uint8_t *value;
    size_t value_len;
} field;

/* Return areas for results whose error payload is larger; 8-aligned like the canonical ABI's. */
typedef struct {
    uint64_t words[8];
} ret_area;

IMPORT("wasi:cli/environment@0.2.0", "get-environment") void get_environment(env_list *ret);
IMPORT("wasi:clocks/monotonic-clock@0.2.0", "subscribe-duration") handle subscribe_duration(uint64_t nanos);
IMPORT("wasi:io/poll@0.2.0", "[method]pollable.block") void pollable_block(handle self);
IMPORT("wasi:io/poll@0.2.0", "[resource-drop]pollable") void pollable_drop(handle self);
IMPORT(HTTP, "[method]incoming-request.path-with-query") void request_path_with_query(handle self, option_string *ret);
IMPORT(HTTP, "[resource-drop]incoming-request") void request_drop(handle self);
IMPORT(HTTP, "[static]fields.from-list") void fields_from_list(const field *entries, size_t len, result_handle *ret);
IMPORT(HTTP, "[constructor]outgoing-response") handle outgoing_response_new(handle headers);
IMPORT(HTTP, "[method]outgoing-response.set-status-code") int32_t outgoing_response_set_status(handle self, int32_t code);
IMPORT(HTTP, "[method]outgoing-response.body") void outgoing_response_body(handle self, result_handle *ret);
IMPORT(HTTP, "[method]outgoing-body.write") void outgoing_body_write(handle self, result_handle *ret);
IMPORT(HTTP, "[static]outgoing-body.finish") void outgoing_body_finish(handle self, int32_t has_trailers,
                                                                     handle trailers, ret_area *ret);
IMPORT(HTTP, "[static]response-outparam.set") void response_outparam_set(handle param, int32_t is_err, int32_t p0,
                                                                       int32_t p1, int64_t p2, int32_t p3,
                                                                       int32_t p4, int32_t p5, int32_t p6);
IMPORT(STREAMS, "[method]output-stream.blocking-write-and-flush") void stream_write_and_flush(
    handle self, const uint8_t *data, size_t len, ret_area *ret);
IMPORT(STREAMS, "[resource-drop]output-stream") void stream_drop(handle self);

/* The host allocates the strings and lists it returns (environment, path) through this export. */
__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *ptr, size_t old_size, size_t align,
                                                                  size_t new_size) {
    (void)old_size;
    if (new_size == 0) return (void *)align;
    void *out = realloc(ptr, new_size); /* malloc's 16-byte alignment covers every WIT type */
    if (out == NULL) __builtin_trap();
    return out;
}

#ifndef GREETER_FIND_GREETING /* a test variant reads it elsewhere (e2e/registry/component_sources/spin) */
#define GREETER_FIND_GREETING find_greeting
#endif

__attribute__((unused)) static int find_greeting(const char **value, size_t *len) {
    env_list env;
    get_environment(&env);
    for (size_t i = 0; i < env.len; i++) {
        if (greeter_equals(env.ptr[i].key.ptr, env.ptr[i].key.len, "GREETING")) {
            *value = env.ptr[i].value.ptr;
            *len = env.ptr[i].value.len;
            return 1;
        }
    }
    return 0;
}

static void sleep_ms(int ms) {
    handle pollable = subscribe_duration((uint64_t)ms * 1000000u);
    pollable_block(pollable);
    pollable_drop(pollable);
}

static handle must(result_handle result) {
    if (result.is_err) __builtin_trap(); /* the host answers 500 for a trapped handler */
    return result.value;
}

static void respond(handle outparam, const struct greeter_reply *reply) {
    static const char content_type[] = "text/plain; charset=utf-8";
    char length[12];
    size_t length_len = 0;
    for (size_t n = reply->len;; n /= 10) {
        length[sizeof length - 1 - length_len++] = (char)('0' + n % 10);
        if (n < 10) break;
    }
    field headers[2] = {
        {{"content-type", 12}, (const uint8_t *)content_type, sizeof content_type - 1},
        {{"content-length", 14}, (const uint8_t *)length + sizeof length - length_len, length_len},
    };
    result_handle fields;
    fields_from_list(headers, 2, &fields);
    handle response = outgoing_response_new(must(fields));
    if (outgoing_response_set_status(response, reply->status) != 0) __builtin_trap();
    result_handle body_result, stream_result;
    outgoing_response_body(response, &body_result);
    handle body = must(body_result);
    outgoing_body_write(body, &stream_result);
    handle stream = must(stream_result);
    /* Hand the response over first, then stream the body: the host sends headers at once. */
    response_outparam_set(outparam, 0, response, 0, 0, 0, 0, 0, 0);
    ret_area ret;
    for (size_t done = 0; done < reply->len;) {
        size_t chunk = reply->len - done > 4096 ? 4096 : reply->len - done; /* the call's limit */
        stream_write_and_flush(stream, (const uint8_t *)reply->body + done, chunk, &ret);
        if (((uint8_t *)&ret)[0] != 0) break; /* the client went away: nothing left to tell it */
        done += chunk;
    }
    stream_drop(stream); /* a body cannot finish while its stream is alive */
    outgoing_body_finish(body, 0, 0, &ret);
}

__attribute__((export_name("wasi:http/incoming-handler@0.2.0#handle"))) void handle_request(handle request,
                                                                                           handle outparam) {
    option_string target;
    request_path_with_query(request, &target);
    const char *greeting = NULL;
    size_t greeting_len = 0;
    GREETER_FIND_GREETING(&greeting, &greeting_len);
    struct greeter_reply reply;
    greeter_route(target.is_some ? target.value.ptr : NULL, target.is_some ? target.value.len : 0, greeting,
                  greeting_len, &reply);
    request_drop(request);
    if (reply.trap) __builtin_trap(); /* GET /trap: the host must turn this into a 500 */
    if (reply.slow_ms > 0) sleep_ms(reply.slow_ms);
    respond(outparam, &reply);
}

/* The greeter's routes, shared by the Wasm component (greeter.c) and its native twin
 * (native/server.c), so a benchmark compares two hosts running the very same request logic.
 *
 * Pure C with no library calls: the component build links no WASI preview 1 functions, and a
 * route must not depend on which host runs it.
 *
 *   GET /              200 "<GREETING or hello> (<GREETER_VERSION>)\n"
 *   GET /healthz       HEALTHZ_STATUS, "ok\n" (or "unhealthy\n" when it is not 2xx)
 *   GET /trap          the component traps; the host must answer 500
 *   GET /slow?ms=N     200 "slept N ms\n" after N milliseconds (also /slow/N; at most 60000)
 *   anything else      404 "not found\n"
 */
#ifndef GREETER_ROUTES_H
#define GREETER_ROUTES_H

#include <stddef.h>

#ifndef GREETER_VERSION
#define GREETER_VERSION "v1"
#endif
#ifndef HEALTHZ_STATUS
#define HEALTHZ_STATUS 200
#endif

#define GREETER_DEFAULT_GREETING "hello"
#define GREETER_MAX_SLOW_MS 60000
#define GREETER_BODY_MAX 512

struct greeter_reply {
    int status;
    int trap;    /* 1: the component must trap instead of answering */
    int slow_ms; /* wait this long before answering */
    size_t len;
    char body[GREETER_BODY_MAX];
};

static size_t greeter_append(struct greeter_reply *r, const char *text, size_t len) {
    size_t room = GREETER_BODY_MAX - r->len;
    if (len > room) len = room;
    for (size_t i = 0; i < len; i++) r->body[r->len + i] = text[i];
    r->len += len;
    return len;
}

static size_t greeter_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static void greeter_append_str(struct greeter_reply *r, const char *text) {
    greeter_append(r, text, greeter_strlen(text));
}

static void greeter_append_uint(struct greeter_reply *r, unsigned value) {
    char digits[12];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value && n < sizeof digits);
    greeter_append(r, digits + sizeof digits - n, n);
}

static int greeter_equals(const char *a, size_t a_len, const char *b) {
    size_t b_len = greeter_strlen(b);
    if (a_len != b_len) return 0;
    for (size_t i = 0; i < a_len; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static int greeter_starts_with(const char *a, size_t a_len, const char *prefix) {
    size_t p_len = greeter_strlen(prefix);
    if (a_len < p_len) return 0;
    for (size_t i = 0; i < p_len; i++)
        if (a[i] != prefix[i]) return 0;
    return 1;
}

/* Leading decimal digits of text, or -1 when there are none. Saturates at GREETER_MAX_SLOW_MS. */
static int greeter_parse_ms(const char *text, size_t len) {
    long value = 0;
    size_t i = 0;
    for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
        value = value * 10 + (text[i] - '0');
        if (value > GREETER_MAX_SLOW_MS) value = GREETER_MAX_SLOW_MS;
    }
    return i ? (int)value : -1;
}

/* The milliseconds a /slow request asks for: "/slow/N" or a "ms=N" query parameter. */
static int greeter_slow_ms(const char *path, size_t path_len, const char *query, size_t query_len) {
    if (path_len > 6) return greeter_parse_ms(path + 6, path_len - 6); /* "/slow/N" */
    for (size_t i = 0; i + 3 <= query_len; i++) {
        if ((i == 0 || query[i - 1] == '&') && query[i] == 'm' && query[i + 1] == 's' && query[i + 2] == '=')
            return greeter_parse_ms(query + i + 3, query_len - i - 3);
    }
    return -1;
}

/* Route one request. target is the path with its query (may be NULL: treated as "/");
 * greeting is the GREETING environment variable (NULL when unset). */
static void greeter_route(const char *target, size_t target_len, const char *greeting, size_t greeting_len,
                          struct greeter_reply *out) {
    out->status = 404;
    out->trap = 0;
    out->slow_ms = 0;
    out->len = 0;
    if (target == NULL || target_len == 0) {
        target = "/";
        target_len = 1;
    }
    size_t path_len = 0;
    while (path_len < target_len && target[path_len] != '?') path_len++;
    const char *query = target + path_len + (path_len < target_len ? 1 : 0);
    size_t query_len = target_len - (size_t)(query - target);

    if (greeter_equals(target, path_len, "/")) {
        out->status = 200;
        if (greeting == NULL) {
            greeting = GREETER_DEFAULT_GREETING;
            greeting_len = greeter_strlen(greeting);
        }
        greeter_append(out, greeting, greeting_len);
        greeter_append_str(out, " (" GREETER_VERSION ")\n");
    } else if (greeter_equals(target, path_len, "/healthz")) {
        out->status = HEALTHZ_STATUS;
        greeter_append_str(out, HEALTHZ_STATUS >= 200 && HEALTHZ_STATUS < 300 ? "ok\n" : "unhealthy\n");
    } else if (greeter_equals(target, path_len, "/trap")) {
        out->status = 500;
        out->trap = 1;
        greeter_append_str(out, "trap\n");
    } else if (greeter_equals(target, path_len, "/slow") || greeter_starts_with(target, path_len, "/slow/")) {
        int ms = greeter_slow_ms(target, path_len, query, query_len);
        if (ms < 0) {
            out->status = 400;
            greeter_append_str(out, "want /slow?ms=N or /slow/N\n");
        } else {
            out->status = 200;
            out->slow_ms = ms;
            greeter_append_str(out, "slept ");
            greeter_append_uint(out, (unsigned)ms);
            greeter_append_str(out, " ms\n");
        }
    } else {
        greeter_append_str(out, "not found\n");
    }
}

#endif

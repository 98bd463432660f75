/* The greeter's native twin: the same routes (../routes.h) behind a tiny HTTP/1.1 server, built
 * static (`gcc -static -O2 -pthread`) into a one-file container image, so a benchmark can compare
 * a Wasm pod with an ordinary runc pod answering byte-for-byte the same bodies.
 *
 * One thread per connection (small stacks), keep-alive and pipelining for HTTP/1.1 unless the
 * client sends `Connection: close`; request bodies announced by Content-Length are skipped.
 * Environment: PORT (default 8080), BIND_ADDR (default 0.0.0.0), GREETING (default "hello").
 * GET /trap answers 500 here: a native process cannot trap one request without dying.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../routes.h"

#define REQUEST_MAX 8192

static const char *greeting;
static size_t greeting_len;

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static int send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int reply(int fd, int status, const char *body, size_t len, int head_only, int keep_alive) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %zu\r\n%s\r\n",
                     status, reason(status), len, keep_alive ? "" : "connection: close\r\n");
    if (send_all(fd, head, (size_t)n) != 0) return -1;
    return head_only ? 0 : send_all(fd, body, len);
}

/* Case-insensitive search for a header's value within the header block [start, end). */
static const char *header_value(const char *start, const char *end, const char *name, size_t *value_len) {
    size_t name_len = strlen(name);
    for (const char *line = start; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (eol == NULL) eol = end;
        if ((size_t)(eol - line) > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            *value_len = (size_t)(eol - v);
            return v;
        }
        line = eol + 2;
    }
    return NULL;
}

static int contains_token(const char *value, size_t len, const char *token) {
    size_t token_len = strlen(token);
    for (size_t i = 0; i + token_len <= len; i++)
        if (strncasecmp(value + i, token, token_len) == 0) return 1;
    return 0;
}

static void *serve_connection(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[REQUEST_MAX];
    size_t have = 0;
    long skip = 0; /* body bytes of the previous request still to discard */
    for (;;) {
        char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        if (end == NULL || skip > 0) {
            if (skip > 0 && have > 0) { /* drop what we already hold of the body */
                size_t drop = (size_t)skip < have ? (size_t)skip : have;
                memmove(buf, buf + drop, have - drop);
                have -= drop;
                skip -= (long)drop;
                continue;
            }
            if (have == sizeof buf) {
                reply(fd, 431, "request too large\n", 18, 0, 0);
                break;
            }
            ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            have += (size_t)n;
            continue;
        }
        /* Request line: METHOD SP TARGET SP VERSION CRLF */
        char *line_end = memmem(buf, (size_t)(end - buf) + 2, "\r\n", 2);
        char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
        char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
        if (sp1 == NULL || sp2 == NULL) {
            reply(fd, 400, "bad request\n", 12, 0, 0);
            break;
        }
        int head_only = (size_t)(sp1 - buf) == 4 && memcmp(buf, "HEAD", 4) == 0;
        int http11 = (size_t)(line_end - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0;
        size_t value_len = 0;
        const char *connection = header_value(line_end + 2, end + 2, "connection", &value_len);
        int keep_alive = connection ? !contains_token(connection, value_len, "close") &&
                                          (http11 || contains_token(connection, value_len, "keep-alive"))
                                    : http11;
        const char *length = header_value(line_end + 2, end + 2, "content-length", &value_len);
        long body_len = length ? strtol(length, NULL, 10) : 0;

        struct greeter_reply r;
        greeter_route(sp1 + 1, (size_t)(sp2 - sp1 - 1), greeting, greeting_len, &r);
        if (r.slow_ms > 0) {
            struct timespec ts = {r.slow_ms / 1000, (long)(r.slow_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
        if (reply(fd, r.status, r.body, r.len, head_only, keep_alive) != 0 || !keep_alive) break;

        size_t used = (size_t)(end + 4 - buf);
        memmove(buf, buf + used, have - used);
        have -= used;
        skip = body_len > 0 ? body_len : 0;
    }
    close(fd);
    return NULL;
}

int main(void) {
    const char *port_env = getenv("PORT");
    const char *addr_env = getenv("BIND_ADDR");
    int port = port_env ? atoi(port_env) : 8080;
    greeting = getenv("GREETING");
    greeting_len = greeting ? strlen(greeting) : 0;
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr_env ? addr_env : "0.0.0.0", &addr.sin_addr) != 1) {
        fprintf(stderr, "greeter-native: bad BIND_ADDR %s\n", addr_env);
        return 2;
    }
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 512) != 0) {
        perror("greeter-native: listen");
        return 1;
    }
    printf("greeter-native (%s) listening on %s:%d\n", GREETER_VERSION, addr_env ? addr_env : "0.0.0.0", port);
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) usleep(10000); /* out of descriptors: let some close */
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) continue;
            perror("greeter-native: accept");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t thread;
        if (pthread_create(&thread, &attr, serve_connection, (void *)(intptr_t)fd) != 0) close(fd);
    }
}

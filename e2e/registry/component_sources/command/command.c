/* A wasi:cli/run component: shows what the host passed in and exits with a chosen code.
 *
 * An ordinary wasi-libc program (WASI preview 1), turned into a component by
 * `wasm-tools component new --adapt wasi_snapshot_preview1=<jco's command adapter>`, so a test
 * sees argv, the environment and the exit code travel through a component host.
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    puts("hello from a wasmkube command component");
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    const char *greeting = getenv("WASMKUBE_GREETING");
    printf("env WASMKUBE_GREETING=%s\n", greeting ? greeting : "(unset)");
    const char *code = getenv("EXIT_CODE");
    int status = code ? atoi(code) : 0;
    printf("exit %d\n", status);
    fflush(stdout);
    return status;
}

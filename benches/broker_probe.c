/* The broker benchmark's probe (benches/broker.sh): times one kind of syscall N times and
 * prints the p50 and p99 in nanoseconds.
 *   plain N          getppid: never leaves the kernel's fast path
 *   refused N        ptrace: refused by seccomp, answered by the broker (a raw notification
 *                    round trip plus the broker's judgement)
 *   open N PATH      openat + close of PATH (observed by the broker under --explain)
 *   connect N PORT   a TCP connect to 127.0.0.1:PORT and close (refused inside)
 *   egress N HOST PORT  a TCP connect to HOST:PORT (resolved once) and close: with --egress,
 *                    made by the broker from the host's network
 */
#include <netdb.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *mode = argv[1];
    long n = atol(argv[2]);
    long long *t = malloc(sizeof(long long) * n);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (argc > 3 && strcmp(mode, "connect") == 0) sa.sin_port = htons(atoi(argv[3]));
    struct addrinfo *ai = NULL, hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    if (strcmp(mode, "egress") == 0) {
        if (argc < 5 || getaddrinfo(argv[3], argv[4], &hints, &ai) != 0) return 3;
    }
    for (long i = 0; i < n; i++) {
        long long t0 = now();
        if (strcmp(mode, "plain") == 0) {
            syscall(SYS_getppid);
        } else if (strcmp(mode, "refused") == 0) {
            syscall(SYS_ptrace, 0, 0, 0, 0);
        } else if (strcmp(mode, "open") == 0) {
            int fd = open(argv[3], O_RDONLY);
            if (fd >= 0) close(fd);
        } else if (strcmp(mode, "connect") == 0) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            connect(s, (struct sockaddr *)&sa, sizeof sa);
            close(s);
        } else if (strcmp(mode, "egress") == 0) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(s, ai->ai_addr, ai->ai_addrlen) != 0) return 4;
            close(s);
        } else {
            return 2;
        }
        t[i] = now() - t0;
    }
    qsort(t, n, sizeof *t, cmp);
    printf("%s p50 %lld p99 %lld\n", mode, t[n / 2], t[n * 99 / 100]);
    return 0;
}

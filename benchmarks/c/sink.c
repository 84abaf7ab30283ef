/* An accept-and-close TCP sink: the "open" endpoint of the benchmark.
 *
 * Listens on 0.0.0.0:PORT with the largest backlog the kernel allows, and in one epoll loop
 * accepts every pending connection and closes it at once. A Python listener would be the
 * bottleneck of an open-port benchmark (one accept per event-loop turn, ~20 µs each); this
 * one costs the kernel's accept and close only.
 *
 *     cc -O2 -o sink sink.c && ./sink 8080      # prints "listening 8080" when ready
 *
 * Ends on SIGTERM/SIGINT, printing how many connections it accepted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(server, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(server, 65535) != 0) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = server};
    epoll_ctl(ep, EPOLL_CTL_ADD, server, &ev);
    printf("listening %d\n", port);
    fflush(stdout);

    unsigned long long accepted = 0;
    while (!stop) {
        struct epoll_event ready;
        int n = epoll_wait(ep, &ready, 1, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (;;) { /* drain the accept queue */
            int conn = accept4(server, NULL, NULL, SOCK_CLOEXEC);
            if (conn < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno == EMFILE || errno == ENFILE) break; /* try again next turn */
                perror("accept4");
                return 1;
            }
            close(conn);
            accepted++;
        }
    }
    printf("accepted %llu\n", accepted);
    return 0;
}

/* A UDP forwarder that holds every query for a fixed time: a DNS resolver "far away".
 *
 * This kernel has no sch_netem (and no sch_fq for EDT pacing), so a delay on the wire cannot
 * be made with tc. This program is the wire instead: it receives each datagram on LISTEN,
 * keeps it DELAY_US microseconds in a FIFO (one timerfd armed for the oldest), then sends it
 * to UPSTREAM from one connected socket; replies go back to the client at once. The DNS ID of
 * each query is rewritten to a forwarder-wide counter so replies find their client.
 * The round trip a client sees grows by DELAY_US plus the forwarder's own few microseconds.
 *
 *     cc -O2 -o delayq delayq.c
 *     ./delayq 127.0.0.54 53 127.0.0.53 53 1000 STATS_FILE   # prints "listening" when ready
 *
 * It runs SCHED_FIFO (priority 1) when allowed, so a loaded machine delays it less.
 * On SIGUSR1 and at exit (SIGTERM/SIGINT) it writes its counters to STATS_FILE:
 * "queries Q replies R dropped D late_us_max L" (dropped: queue full or an unknown reply ID;
 * late_us_max: the worst lateness of a release behind its due time).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define QCAP 16384   /* queries held at once; more are dropped (and counted) */
#define MAXDNS 1232  /* the EDNS buffer size clients offer by default: larger is truncated */
#define BATCH 64

struct held {
    uint64_t due_ns;
    struct sockaddr_in client;
    uint16_t len;
    unsigned char data[MAXDNS];
};

struct flight {
    struct sockaddr_in client;
    uint16_t client_id;
    uint8_t used;
};

static struct held queue[QCAP];
static unsigned head, count;
static struct flight flights[65536];
static uint16_t next_id;
static unsigned long long n_queries, n_replies, n_dropped;
static uint64_t late_max_ns;
static volatile sig_atomic_t stop, dump;
static const char *stats_path;

static void on_signal(int sig) {
    if (sig == SIGUSR1) dump = 1;
    else stop = 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void write_stats(void) {
    FILE *f = fopen(stats_path, "w");
    if (f == NULL) return;
    fprintf(f, "queries %llu replies %llu dropped %llu late_us_max %llu\n", n_queries, n_replies,
            n_dropped, (unsigned long long)(late_max_ns / 1000));
    fclose(f);
}

static void arm(int tfd) {
    struct itimerspec it;
    memset(&it, 0, sizeof it);
    if (count > 0) {
        uint64_t due = queue[head].due_ns;
        it.it_value.tv_sec = (time_t)(due / 1000000000u);
        it.it_value.tv_nsec = (long)(due % 1000000000u);
        if (it.it_value.tv_sec == 0 && it.it_value.tv_nsec == 0) it.it_value.tv_nsec = 1;
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &it, NULL);
}

static int udp_socket(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int size = 16 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    return fd;
}

static struct sockaddr_in address(const char *host, const char *port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "not an IPv4 address: %s\n", host);
        exit(2);
    }
    return a;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s LISTEN PORT UPSTREAM PORT DELAY_US STATS_FILE\n", argv[0]);
        return 2;
    }
    struct sockaddr_in listen_at = address(argv[1], argv[2]);
    struct sockaddr_in upstream = address(argv[3], argv[4]);
    uint64_t delay_ns = (uint64_t)strtoull(argv[5], NULL, 10) * 1000u;
    stats_path = argv[6];
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake on time, not up to 50 µs late */
    /* A wire does not wait for a CPU: run before the tools (real-time, the lowest priority).
     * The loop sleeps in epoll_wait between packets, so it cannot starve them. */
    struct sched_param rt = {.sched_priority = 1};
    if (sched_setscheduler(0, SCHED_FIFO, &rt) != 0) perror("sched_setscheduler (delay may jitter)");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    int cfd = udp_socket(), ufd = udp_socket();
    if (bind(cfd, (struct sockaddr *)&listen_at, sizeof listen_at) != 0 ||
        connect(ufd, (struct sockaddr *)&upstream, sizeof upstream) != 0) {
        perror("bind/connect");
        return 1;
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int fds[3] = {cfd, ufd, tfd};
    for (int i = 0; i < 3; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    printf("listening %s:%s\n", argv[1], argv[2]);
    fflush(stdout);

    static unsigned char bufs[BATCH][MAXDNS];
    static struct sockaddr_in from[BATCH];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    while (!stop) {
        if (dump) {
            dump = 0;
            write_stats();
        }
        struct epoll_event ready[3];
        int n = epoll_wait(ep, ready, 3, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = ready[i].data.fd;
            if (fd == tfd) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN) {
                    perror("read timerfd");
                }
                uint64_t now = now_ns();
                while (count > 0 && queue[head].due_ns <= now) {
                    struct held *q = &queue[head];
                    if (now - q->due_ns > late_max_ns) late_max_ns = now - q->due_ns;
                    uint16_t id = next_id++;
                    struct flight *f = &flights[id];
                    f->client = q->client;
                    f->client_id = (uint16_t)(q->data[0] << 8 | q->data[1]);
                    f->used = 1;
                    q->data[0] = (unsigned char)(id >> 8);
                    q->data[1] = (unsigned char)(id & 0xff);
                    if (send(ufd, q->data, q->len, 0) < 0) n_dropped++;
                    head = (head + 1) % QCAP;
                    count--;
                }
                arm(tfd);
                continue;
            }
            for (int k = 0; k < BATCH; k++) {
                iov[k].iov_base = bufs[k];
                iov[k].iov_len = MAXDNS;
                memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
                msgs[k].msg_hdr.msg_iov = &iov[k];
                msgs[k].msg_hdr.msg_iovlen = 1;
                msgs[k].msg_hdr.msg_name = &from[k];
                msgs[k].msg_hdr.msg_namelen = sizeof from[k];
            }
            int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (got <= 0) continue;
            if (fd == cfd) {
                uint64_t due = now_ns() + delay_ns;
                int was_empty = count == 0;
                for (int k = 0; k < got; k++) {
                    unsigned len = msgs[k].msg_len;
                    n_queries++;
                    if (count == QCAP || len < 12) {
                        n_dropped++;
                        continue;
                    }
                    struct held *q = &queue[(head + count) % QCAP];
                    q->due_ns = due;
                    q->client = from[k];
                    q->len = (uint16_t)len;
                    memcpy(q->data, bufs[k], len);
                    count++;
                }
                if (was_empty) arm(tfd);
            } else {
                for (int k = 0; k < got; k++) {
                    unsigned len = msgs[k].msg_len;
                    if (len < 12) continue;
                    uint16_t id = (uint16_t)(bufs[k][0] << 8 | bufs[k][1]);
                    struct flight *f = &flights[id];
                    if (!f->used) {
                        n_dropped++;
                        continue;
                    }
                    bufs[k][0] = (unsigned char)(f->client_id >> 8);
                    bufs[k][1] = (unsigned char)(f->client_id & 0xff);
                    f->used = 0;
                    if (sendto(cfd, bufs[k], len, 0, (struct sockaddr *)&f->client,
                               sizeof f->client) < 0)
                        n_dropped++;
                    else
                        n_replies++;
                }
            }
        }
    }
    write_stats();
    return 0;
}

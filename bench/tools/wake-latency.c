// One-way wake-up latency between two threads of one process on this
// machine: thread B sleeps in epoll_wait on an eventfd; thread A stamps
// CLOCK_MONOTONIC and writes the eventfd; B stamps on waking. A waits
// `gap` µs between wakes so B is really asleep (as rust-net's accept thread
// is at one connection at a time). Prints p50/p99 in µs.
// gcc -O2 -pthread wake-latency.c -o wake-latency && ./wake-latency [n] [gap_us]
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int efd, back, ep;
static volatile uint64_t sent_ns;
static double *lat;
static int n;

static uint64_t now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void *sleeper(void *arg) {
  (void)arg;
  struct epoll_event ev;
  for (int i = 0; i < n; i++) {
    while (epoll_wait(ep, &ev, 1, -1) != 1) {}
    uint64_t t = now(), v;
    if (read(efd, &v, 8) != 8) abort();
    lat[i] = (t - sent_ns) / 1000.0;
    v = 1;
    if (write(back, &v, 8) != 8) abort();
  }
  return NULL;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  n = argc > 1 ? atoi(argv[1]) : 5000;
  int gap = argc > 2 ? atoi(argv[2]) : 150;
  lat = calloc(n, sizeof *lat);
  efd = eventfd(0, 0);
  back = eventfd(0, 0);
  ep = epoll_create1(0);
  struct epoll_event ev = { .events = EPOLLIN, .data.fd = efd };
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  pthread_t t;
  pthread_create(&t, NULL, sleeper, NULL);
  for (int i = 0; i < n; i++) {
    struct timespec g = { 0, gap * 1000L };
    nanosleep(&g, NULL);
    uint64_t v = 1;
    sent_ns = now();
    if (write(efd, &v, 8) != 8) abort();
    if (read(back, &v, 8) != 8) abort();
  }
  pthread_join(t, NULL);
  qsort(lat, n, sizeof *lat, cmp);
  printf("wake latency over %d wakes, %d us apart: p50 %.1f us, p99 %.1f us\n", n, gap, lat[n / 2], lat[n * 99 / 100]);
  return 0;
}

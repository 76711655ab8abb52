/* tinycdb lookups: the keys in KEYS (one per line), looked up in DB through
 * libcdb's mmap'ed reader, timed with CLOCK_MONOTONIC around the loop only.
 * Build: cc -O2 -o lookup_tinycdb lookup.c -lcdb   (Debian: libcdb-dev) */
#include <cdb.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: lookup_tinycdb DB KEYS\n"); return 100; }
  int kfd = open(argv[2], O_RDONLY);
  struct stat st;
  if (kfd < 0 || fstat(kfd, &st) < 0) { perror(argv[2]); return 111; }
  char *keys = malloc(st.st_size + 1);
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(kfd, keys + got, st.st_size - got);
    if (r <= 0) { perror("read keys"); return 111; }
    got += r;
  }
  size_t n = 0, cap = 1 << 20;
  char **k = malloc(cap * sizeof *k);
  unsigned *kl = malloc(cap * sizeof *kl);
  for (char *p = keys, *end = keys + got; p < end;) {
    char *nl = memchr(p, '\n', end - p);
    if (!nl) nl = end;
    if (n == cap) { cap *= 2; k = realloc(k, cap * sizeof *k); kl = realloc(kl, cap * sizeof *kl); }
    k[n] = p; kl[n] = nl - p; n++;
    p = nl + 1;
  }
  double t0 = now();
  int fd = open(argv[1], O_RDONLY);
  struct cdb c;
  if (fd < 0 || cdb_init(&c, fd) < 0) { perror(argv[1]); return 111; }
  double t1 = now();
  unsigned long found = 0, sum = 0;
  for (size_t i = 0; i < n; i++) {
    if (cdb_find(&c, k[i], kl[i]) > 0) {
      const unsigned char *d = cdb_getdata(&c);
      found++;
      if (cdb_datalen(&c)) sum += d[0];
    }
  }
  double t2 = now();
  printf("impl=tinycdb lookups=%zu found=%lu sum=%lu open_ms=%.3f ns_per_lookup=%.1f\n",
         n, found, sum, (t1 - t0) * 1e3, (t2 - t1) * 1e9 / n);
  return 0;
}

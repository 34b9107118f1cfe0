/*
 * pop3-load: a fast POP3 load client for `npm run bench:pop3`.
 *
 * Compiled by test/bench/pop3-bench.ts at run time (cc -O2 -pthread); nothing
 * binary is committed. One thread per client, blocking sockets, one buffer
 * per connection, one memmem pass per multi-line reply (the terminator
 * "\r\n.\r\n" is looked for once over the bytes as they arrive), commands
 * written in one write() per batch. Its own ceiling is measured against
 * test/bench/null-pop3.c, so a ratio between two servers is never this
 * client's limit in disguise.
 *
 * Usage:
 *   pop3-load download -p PORT [-w PASS] [-d DEPTH] USER...
 *       one thread per USER: connect, greeting, USER/PASS, UIDL, RETR 1..N
 *       with up to DEPTH RETRs outstanding (1: no pipelining), QUIT.
 *   pop3-load stat -p PORT [-w PASS] [-r REPEAT] USER
 *       REPEAT sequential sessions: connect, greeting, USER/PASS, STAT, QUIT;
 *       times USER sent -> STAT answered.
 *   pop3-load prime -p PORT [-w PASS] USER...
 *       one STAT session per USER in turn (builds each server's caches).
 *   pop3-load connect -p PORT [-n COUNT]
 *       COUNT sequential connections: connect -> greeting timed, QUIT, close.
 *   pop3-load warm DIR...
 *       read every file in DIR/cur and DIR/new (puts the tree in the page cache).
 * Prints one JSON object on stdout; errors go to stderr with exit status 1.
 * Every socket has a 120 s send/receive timeout, so no run can hang.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define MAX_DEPTH 256
#define IO_TIMEOUT_S 120

static int port;
static const char *host = "127.0.0.1";
static const char *password = "bench";
static int depth = 1;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("pop3-load: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

typedef struct {
  int fd;
  char *buf;
  size_t start, end; /* unread bytes are buf[start, end) */
  const char *who;
} conn_t;

static void conn_open(conn_t *c, const char *who) {
  c->who = who;
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) die("%s: socket: %s", who, strerror(errno));
  struct timeval tv = {IO_TIMEOUT_S, 0};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die("bad host %s", host);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("%s: connect: %s", who, strerror(errno));
  if (c->buf == NULL && (c->buf = malloc(BUF_SIZE)) == NULL) die("out of memory");
  c->start = c->end = 0;
}

static void conn_close(conn_t *c) {
  close(c->fd);
  c->fd = -1;
}

/* Read more bytes after buf[end]; keeps unread bytes, moving them to the front when needed. */
static void fill(conn_t *c) {
  if (c->start == c->end) c->start = c->end = 0;
  if (c->end == BUF_SIZE) {
    if (c->start == 0) die("%s: reply line longer than the buffer", c->who);
    memmove(c->buf, c->buf + c->start, c->end - c->start);
    c->end -= c->start;
    c->start = 0;
  }
  ssize_t n = read(c->fd, c->buf + c->end, BUF_SIZE - c->end);
  if (n == 0) die("%s: connection closed by the server", c->who);
  if (n < 0) die("%s: read: %s", c->who, errno == EAGAIN ? "timeout" : strerror(errno));
  c->end += (size_t)n;
}

static void send_all(conn_t *c, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(c->fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("%s: write: %s", c->who, errno == EAGAIN ? "timeout" : strerror(errno));
    }
    data += n;
    len -= (size_t)n;
  }
}

/* One status line; returns it NUL-terminated (CRLF cut), valid until the next read. Dies on -ERR when must_ok. */
static char *status_line(conn_t *c, int must_ok, const char *what) {
  for (;;) {
    char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
    if (nl != NULL) {
      char *line = c->buf + c->start;
      c->start = (size_t)(nl - c->buf) + 1;
      if (nl > line && nl[-1] == '\r') nl--;
      *nl = '\0';
      if (must_ok && strncmp(line, "+OK", 3) != 0) die("%s: %s answered: %s", c->who, what, line);
      return line;
    }
    fill(c);
  }
}

/*
 * The body of a multi-line reply whose status line was just read: up to the
 * terminating "." line. Returns the body's octets (dot-stuffing included,
 * terminator excluded); counts LFs into *lines when lines is not NULL.
 */
static uint64_t multiline_body(conn_t *c, uint64_t *lines) {
  uint64_t octets = 0;
  /* An empty body: the "." line comes at once. */
  while (c->end - c->start < 3) fill(c);
  if (memcmp(c->buf + c->start, ".\r\n", 3) == 0) {
    c->start += 3;
    return 0;
  }
  for (;;) {
    char *from = c->buf + c->start;
    size_t avail = c->end - c->start;
    char *t = memmem(from, avail, "\r\n.\r\n", 5);
    size_t take = t != NULL ? (size_t)(t - from) + 2 : (avail > 4 ? avail - 4 : 0);
    if (lines != NULL) {
      for (char *p = from, *e = from + take; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++) (*lines)++;
    }
    octets += take;
    if (t != NULL) {
      c->start += take + 3;
      return octets;
    }
    c->start += take;
    fill(c);
  }
}

static void login(conn_t *c, const char *user) {
  char cmd[512];
  int n = snprintf(cmd, sizeof cmd, "USER %s\r\n", user);
  send_all(c, cmd, (size_t)n);
  status_line(c, 1, "USER");
  n = snprintf(cmd, sizeof cmd, "PASS %s\r\n", password);
  send_all(c, cmd, (size_t)n);
  status_line(c, 1, "PASS");
}

static void quit(conn_t *c) {
  send_all(c, "QUIT\r\n", 6);
  status_line(c, 1, "QUIT");
}

/* ---- download: one thread per user ---- */

typedef struct {
  const char *user;
  pthread_barrier_t *barrier;
  double connect_ms; /* connect() start -> greeting */
  double done_ms;    /* absolute time QUIT was answered */
  uint64_t messages, octets;
} client_t;

static size_t put_retr(char *out, uint64_t n) {
  char digits[24];
  int k = 0;
  do {
    digits[k++] = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  memcpy(out, "RETR ", 5);
  size_t len = 5;
  while (k > 0) out[len++] = digits[--k];
  out[len++] = '\r';
  out[len++] = '\n';
  return len;
}

static void *download_thread(void *arg) {
  client_t *cl = arg;
  conn_t c = {0};
  pthread_barrier_wait(cl->barrier);
  double t0 = now_ms();
  conn_open(&c, cl->user);
  status_line(&c, 1, "greeting");
  cl->connect_ms = now_ms() - t0;
  login(&c, cl->user);
  send_all(&c, "UIDL\r\n", 6);
  status_line(&c, 1, "UIDL");
  uint64_t count = 0;
  multiline_body(&c, &count);
  char cmds[MAX_DEPTH * 32];
  uint64_t sent = 0, received = 0;
  while (received < count) {
    size_t len = 0;
    while (sent < count && sent - received < (uint64_t)depth) len += put_retr(cmds + len, ++sent);
    if (len > 0) send_all(&c, cmds, len);
    status_line(&c, 1, "RETR");
    cl->octets += multiline_body(&c, NULL);
    received++;
  }
  cl->messages = received;
  quit(&c);
  cl->done_ms = now_ms();
  conn_close(&c);
  free(c.buf);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void print_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("\"cpuUserMs\":%.1f,\"cpuSysMs\":%.1f", ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3,
         ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3);
}

static void print_list(const char *name, const double *v, int n) {
  printf("\"%s\":[", name);
  for (int i = 0; i < n; i++) printf("%s%.3f", i ? "," : "", v[i]);
  printf("]");
}

static void run_download(int nusers, char **users) {
  client_t *clients = calloc((size_t)nusers, sizeof *clients);
  pthread_t *threads = calloc((size_t)nusers, sizeof *threads);
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)nusers + 1);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (int i = 0; i < nusers; i++) {
    clients[i].user = users[i];
    clients[i].barrier = &barrier;
    if (pthread_create(&threads[i], &attr, download_thread, &clients[i]) != 0) die("pthread_create failed");
  }
  double start = now_ms();
  pthread_barrier_wait(&barrier);
  start = now_ms();
  for (int i = 0; i < nusers; i++) pthread_join(threads[i], NULL);
  double end = now_ms();
  uint64_t messages = 0, octets = 0;
  double *connect = calloc((size_t)nusers, sizeof *connect);
  for (int i = 0; i < nusers; i++) {
    messages += clients[i].messages;
    octets += clients[i].octets;
    connect[i] = clients[i].connect_ms;
  }
  qsort(connect, (size_t)nusers, sizeof *connect, cmp_double);
  printf("{\"mode\":\"download\",\"clients\":%d,\"depth\":%d,\"messages\":%llu,\"octets\":%llu,\"wallMs\":%.3f,", nusers,
         depth, (unsigned long long)messages, (unsigned long long)octets, end - start);
  print_list("connectMs", connect, nusers);
  printf(",");
  print_cpu();
  printf("}\n");
}

/* ---- stat / prime: sequential sessions ---- */

static double stat_session(const char *user, uint64_t *count) {
  conn_t c = {0};
  conn_open(&c, user);
  status_line(&c, 1, "greeting");
  double t0 = now_ms();
  login(&c, user);
  send_all(&c, "STAT\r\n", 6);
  char *line = status_line(&c, 1, "STAT");
  double t = now_ms() - t0;
  *count = strtoull(line + 3, NULL, 10);
  quit(&c);
  conn_close(&c);
  free(c.buf);
  return t;
}

static void run_stat(const char *user, int repeat) {
  double *times = calloc((size_t)repeat, sizeof *times);
  uint64_t count = 0;
  for (int i = 0; i < repeat; i++) times[i] = stat_session(user, &count);
  printf("{\"mode\":\"stat\",\"messages\":%llu,", (unsigned long long)count);
  print_list("statMs", times, repeat);
  printf(",");
  print_cpu();
  printf("}\n");
}

static void run_prime(int nusers, char **users) {
  uint64_t total = 0, count = 0;
  for (int i = 0; i < nusers; i++) {
    stat_session(users[i], &count);
    total += count;
  }
  printf("{\"mode\":\"prime\",\"users\":%d,\"messages\":%llu}\n", nusers, (unsigned long long)total);
}

/* ---- connect: sequential new connections ---- */

static void run_connect(int count) {
  double *times = calloc((size_t)count, sizeof *times);
  conn_t c = {0};
  for (int i = 0; i < count; i++) {
    double t0 = now_ms();
    conn_open(&c, "connect");
    status_line(&c, 1, "greeting");
    times[i] = now_ms() - t0;
    quit(&c);
    conn_close(&c);
  }
  free(c.buf);
  printf("{\"mode\":\"connect\",");
  print_list("connectMs", times, count);
  printf(",");
  print_cpu();
  printf("}\n");
}

/* ---- warm: read a Maildir's files into the page cache ---- */

static void run_warm(int ndirs, char **dirs) {
  static char buf[1 << 16];
  uint64_t files = 0, octets = 0;
  for (int i = 0; i < ndirs; i++) {
    for (int s = 0; s < 2; s++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", dirs[i], s == 0 ? "cur" : "new");
      int dfd = open(path, O_RDONLY | O_DIRECTORY);
      if (dfd < 0) continue;
      DIR *d = fdopendir(dfd);
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        int fd = openat(dfd, e->d_name, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) octets += (uint64_t)n;
        close(fd);
        files++;
      }
      closedir(d);
    }
  }
  printf("{\"mode\":\"warm\",\"files\":%llu,\"octets\":%llu}\n", (unsigned long long)files, (unsigned long long)octets);
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: pop3-load download|stat|prime|connect|warm [options] ARGS...");
  const char *mode = argv[1];
  int repeat = 1, count = 100, opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "p:h:w:d:r:n:")) != -1) {
    switch (opt) {
      case 'p': port = atoi(optarg); break;
      case 'h': host = optarg; break;
      case 'w': password = optarg; break;
      case 'd': depth = atoi(optarg); break;
      case 'r': repeat = atoi(optarg); break;
      case 'n': count = atoi(optarg); break;
      default: die("unknown option");
    }
  }
  if (depth < 1 || depth > MAX_DEPTH) die("depth must be 1-%d", MAX_DEPTH);
  if (repeat < 1 || count < 1) die("-r and -n must be positive");
  int nargs = argc - optind;
  char **args = argv + optind;
  if (strcmp(mode, "warm") == 0) {
    run_warm(nargs, args);
    return 0;
  }
  if (port <= 0 || port > 65535) die("-p PORT is required");
  if (strcmp(mode, "download") == 0 && nargs > 0) run_download(nargs, args);
  else if (strcmp(mode, "stat") == 0 && nargs == 1) run_stat(args[0], repeat);
  else if (strcmp(mode, "prime") == 0 && nargs > 0) run_prime(nargs, args);
  else if (strcmp(mode, "connect") == 0) run_connect(count);
  else die("bad mode or arguments: %s", mode);
  fflush(stdout);
  return 0;
}

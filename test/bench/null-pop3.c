/*
 * null-pop3: a trivial in-memory POP3 responder for `npm run bench:pop3`.
 *
 * It answers the benchmark's sessions (USER, PASS, STAT, UIDL, LIST, RETR,
 * NOOP, QUIT) with no disk and no work beyond copying bytes, so what the load
 * client (pop3-load.c) reaches against it is the client's own ceiling on this
 * machine: the figure printed beside each maildird/Dovecot ratio. One thread
 * per connection, blocking sockets; all complete commands in the input are
 * answered, then the replies go out in one write (pipelining honoured).
 *
 * Usage: null-pop3 -f MESSAGE [-d COUNT] [-m USER=COUNT]...
 *   MESSAGE is one message in wire form (CRLF, dot-stuffed, no terminator),
 *   served for every RETR; a maildrop holds COUNT messages (-m per user).
 * Listens on 127.0.0.1, an ephemeral port, printed as `{"port":N}` on stdout.
 * Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define IN_SIZE 65536
#define OUT_FLUSH (256 * 1024)
#define MAX_USERS 256

static char *message;
static size_t message_len, message_octets; /* octets: before dot-stuffing, as LIST/STAT report */
static long default_count = 1000;
static struct {
  char name[64];
  long count;
} users[MAX_USERS];
static int nusers;

typedef struct {
  int fd;
  char *out;
  size_t len, cap;
} out_t;

static void out_put(out_t *o, const char *data, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap * 2;
    while (cap < o->len + n) cap *= 2;
    o->out = realloc(o->out, cap);
    if (o->out == NULL) abort();
    o->cap = cap;
  }
  memcpy(o->out + o->len, data, n);
  o->len += n;
}

static int out_flush(out_t *o) {
  size_t done = 0;
  while (done < o->len) {
    ssize_t n = write(o->fd, o->out + done, o->len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)n;
  }
  o->len = 0;
  return 0;
}

static void out_printf(out_t *o, const char *fmt, long a, long b) {
  char line[128];
  int n = snprintf(line, sizeof line, fmt, a, b);
  out_put(o, line, (size_t)n);
}

static long count_for(const char *user) {
  for (int i = 0; i < nusers; i++)
    if (strcmp(users[i].name, user) == 0) return users[i].count;
  return default_count;
}

static void *session(void *arg) {
  int fd = (int)(long)arg;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char *in = malloc(IN_SIZE);
  out_t o = {fd, malloc(OUT_FLUSH * 2), 0, OUT_FLUSH * 2};
  size_t start = 0, end = 0;
  char user[64] = "";
  long count = 0;
  int quit = 0;
  out_put(&o, "+OK null POP3 ready\r\n", 21);
  if (out_flush(&o) != 0) goto done;
  while (!quit) {
    if (start == end) start = end = 0;
    if (end == IN_SIZE) {
      memmove(in, in + start, end - start);
      end -= start;
      start = 0;
    }
    ssize_t n = read(fd, in + end, IN_SIZE - end);
    if (n <= 0) break;
    end += (size_t)n;
    char *nl;
    while (!quit && (nl = memchr(in + start, '\n', end - start)) != NULL) {
      char *line = in + start;
      start = (size_t)(nl - in) + 1;
      if (nl > line && nl[-1] == '\r') nl--;
      *nl = '\0';
      char *arg1 = strchr(line, ' ');
      if (arg1 != NULL) *arg1++ = '\0';
      if (strcasecmp(line, "RETR") == 0) {
        long k = arg1 ? atol(arg1) : 0;
        if (k < 1 || k > count) {
          out_put(&o, "-ERR no such message\r\n", 22);
        } else {
          out_printf(&o, "+OK %ld octets\r\n", (long)message_octets, 0);
          out_put(&o, message, message_len);
          out_put(&o, ".\r\n", 3);
        }
      } else if (strcasecmp(line, "USER") == 0) {
        snprintf(user, sizeof user, "%s", arg1 ? arg1 : "");
        out_put(&o, "+OK\r\n", 5);
      } else if (strcasecmp(line, "PASS") == 0) {
        count = count_for(user);
        out_put(&o, "+OK logged in\r\n", 15);
      } else if (strcasecmp(line, "STAT") == 0) {
        out_printf(&o, "+OK %ld %ld\r\n", count, count * (long)message_octets);
      } else if (strcasecmp(line, "UIDL") == 0 || strcasecmp(line, "LIST") == 0) {
        int is_uidl = line[0] == 'U' || line[0] == 'u';
        out_put(&o, "+OK\r\n", 5);
        for (long k = 1; k <= count; k++) {
          if (is_uidl) out_printf(&o, "%ld null%08lx\r\n", k, k);
          else out_printf(&o, "%ld %ld\r\n", k, (long)message_octets);
          if (o.len >= OUT_FLUSH && out_flush(&o) != 0) goto done;
        }
        out_put(&o, ".\r\n", 3);
      } else if (strcasecmp(line, "NOOP") == 0) {
        out_put(&o, "+OK\r\n", 5);
      } else if (strcasecmp(line, "QUIT") == 0) {
        out_put(&o, "+OK bye\r\n", 9);
        quit = 1;
      } else {
        out_put(&o, "-ERR unknown command\r\n", 22);
      }
      if (o.len >= OUT_FLUSH && out_flush(&o) != 0) goto done;
    }
    if (o.len > 0 && out_flush(&o) != 0) break;
  }
done:
  close(fd);
  free(in);
  free(o.out);
  return NULL;
}

int main(int argc, char **argv) {
  const char *file = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "f:d:m:")) != -1) {
    switch (opt) {
      case 'f': file = optarg; break;
      case 'd': default_count = atol(optarg); break;
      case 'm': {
        char *eq = strchr(optarg, '=');
        if (eq == NULL || nusers == MAX_USERS || (size_t)(eq - optarg) >= sizeof users[0].name) {
          fprintf(stderr, "null-pop3: bad -m %s\n", optarg);
          return 1;
        }
        memcpy(users[nusers].name, optarg, (size_t)(eq - optarg));
        users[nusers].count = atol(eq + 1);
        nusers++;
        break;
      }
      default: return 1;
    }
  }
  if (file == NULL) {
    fprintf(stderr, "null-pop3: -f MESSAGE is required\n");
    return 1;
  }
  FILE *f = fopen(file, "rb");
  struct stat st;
  if (f == NULL || fstat(fileno(f), &st) != 0) {
    fprintf(stderr, "null-pop3: cannot read %s\n", file);
    return 1;
  }
  message_len = (size_t)st.st_size;
  message = malloc(message_len);
  if (fread(message, 1, message_len, f) != message_len) return 1;
  fclose(f);
  /* LIST/STAT octets exclude dot-stuffing (RFC 1939 section 11): one less per stuffed line. */
  message_octets = message_len;
  if (message_len > 0 && message[0] == '.') message_octets--;
  for (size_t i = 2; i + 1 < message_len; i++)
    if (message[i] == '.' && message[i - 1] == '\n' && message[i - 2] == '\r') message_octets--;

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 1024) != 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &len) != 0) {
    perror("null-pop3: listen");
    return 1;
  }
  printf("{\"port\":%d}\n", ntohs(sa.sin_port));
  fflush(stdout);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
      perror("null-pop3: accept");
      return 1;
    }
    pthread_t t;
    if (pthread_create(&t, &attr, session, (void *)(long)fd) != 0) close(fd);
  }
}

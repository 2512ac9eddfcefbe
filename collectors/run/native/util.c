/* Small things every part needs: buffers, JSON text, clocks, the wrapper's log lines, signal names. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wrapper.h"

static void grow(buf_t *b, size_t need) {
  if (b->len + need + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + need + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    /* Out of memory in a process of a few hundred kilobytes: nothing sensible is left to do. */
    static const char msg[] = "faultline run: out of memory\n";
    (void)!write(2, msg, sizeof msg - 1);
    abort();
  }
  b->p = p;
  b->cap = cap;
}

void buf_add(buf_t *b, const void *s, size_t n) {
  grow(b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

void buf_fmt(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  grow(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned min;
  if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  unsigned cp = c & (0x7f >> len);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

static const char REPLACEMENT[] = "\xef\xbf\xbd";

void utf8_clean(buf_t *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t len = utf8_seq(u + i, n - i);
    if (len) buf_add(b, u + i, len), i += len;
    else buf_add(b, REPLACEMENT, 3), i++;
  }
}

void json_string(buf_t *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  buf_add(b, "\"", 1);
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    if (c == '"' || c == '\\') buf_add(b, "\\", 1), buf_add(b, &u[i], 1), i++;
    else if (c == '\n') buf_add(b, "\\n", 2), i++;
    else if (c == '\r') buf_add(b, "\\r", 2), i++;
    else if (c == '\t') buf_add(b, "\\t", 2), i++;
    else if (c == '\b') buf_add(b, "\\b", 2), i++;
    else if (c == '\f') buf_add(b, "\\f", 2), i++;
    else if (c < 0x20) buf_fmt(b, "\\u%04x", c), i++;
    else {
      size_t len = utf8_seq(u + i, n - i);
      if (len) buf_add(b, u + i, len), i += len;
      else buf_add(b, REPLACEMENT, 3), i++;
    }
  }
  buf_add(b, "\"", 1);
}

void json_number(buf_t *b, double v) {
  char text[40];
  for (int precision = 1; precision <= 17; precision++) {
    snprintf(text, sizeof text, "%.*g", precision, v);
    if (strtod(text, NULL) == v) break;
  }
  buf_str(b, text);
}

static void attr_key(attrs_t *a, const char *key) {
  if (a->any) buf_add(&a->b, ",", 1);
  a->any = true;
  buf_str(&a->b, "{\"key\":");
  json_string(&a->b, key, strlen(key));
  buf_str(&a->b, ",\"value\":{");
}

void attr_str(attrs_t *a, const char *key, const char *value) {
  if (!value) return;
  attr_key(a, key);
  buf_str(&a->b, "\"stringValue\":");
  json_string(&a->b, value, strlen(value));
  buf_str(&a->b, "}}");
}

void attr_int(attrs_t *a, const char *key, int64_t value) {
  attr_key(a, key);
  buf_fmt(&a->b, "\"intValue\":\"%lld\"}}", (long long)value);
}

void attr_num(attrs_t *a, const char *key, double value) {
  if (value == floor(value) && fabs(value) < 9e15) return attr_int(a, key, (int64_t)value);
  attr_key(a, key);
  buf_str(&a->b, "\"doubleValue\":");
  json_number(&a->b, value);
  buf_str(&a->b, "}}");
}

void attr_bool(attrs_t *a, const char *key, bool value) {
  attr_key(a, key);
  buf_str(&a->b, value ? "\"boolValue\":true}}" : "\"boolValue\":false}}");
}

int64_t mono_ms(void) { return (int64_t)mono_msf(); }

double mono_msf(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

int64_t wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

const char *fmt_ms(int64_t ms, char out[32]) {
  if (ms < 1000) snprintf(out, 32, "%lld ms", (long long)ms);
  else {
    long long tenths = (long long)llround((double)ms / 100.0);
    if (tenths % 10 == 0) snprintf(out, 32, "%lld s", tenths / 10);
    else snprintf(out, 32, "%lld.%lld s", tenths / 10, tenths % 10);
  }
  return out;
}

bool write_all(int fd, const char *p, size_t n) {
  int stalls = 0;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w, n -= (size_t)w;
      stalls = 0;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN && stalls++ < 20) {
      /* Someone made the descriptor non-blocking: wait for room, a while only (the command waits on us). */
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      poll(&pfd, 1, 100);
      continue;
    }
    return false;
  }
  return true;
}

void say(const char *fmt, ...) {
  buf_t b = {0};
  buf_str(&b, "faultline run: ");
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n > 0) {
    char *text = malloc((size_t)n + 1);
    if (text) {
      va_start(ap, fmt);
      vsnprintf(text, (size_t)n + 1, fmt, ap);
      va_end(ap);
      buf_add(&b, text, (size_t)n);
      free(text);
    }
  }
  buf_add(&b, "\n", 1);
  write_all(2, b.p, b.len);
  buf_free(&b);
}

const char *signal_name(int sig) {
  static const char *const names[] = {
      NULL,      "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",    "SIGTRAP",   "SIGABRT", "SIGBUS",
      "SIGFPE",  "SIGKILL", "SIGUSR1",   "SIGSEGV", "SIGUSR2",   "SIGPIPE",   "SIGALRM", "SIGTERM",
      "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP",   "SIGTTIN",   "SIGTTOU", "SIGURG",
      "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH",  "SIGIO",     "SIGPWR",  "SIGSYS",
  };
  return sig > 0 && sig < (int)(sizeof names / sizeof names[0]) ? names[sig] : NULL;
}

const char *errno_code(int err) {
  switch (err) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ECONNABORTED: return "ECONNABORTED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTDOWN: return "EHOSTDOWN";
    case ENETDOWN: return "ENETDOWN";
    case EPIPE: return "EPIPE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    default: return strerror(err);
  }
}

/*
 * One HTTP/1.1 POST at a time per caller, over a non-blocking socket driven by the wrapper's poll() loop:
 * connect, write, read the answer, each step bounded by the request's deadline. `Connection: close` keeps
 * the state machine small (the answer ends at EOF or its Content-Length); nothing here blocks the loop
 * except resolving a host name that is not an address: once, and again only after a failed connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wrapper.h"

/* The most of an answer kept: status line, headers and the start of the body. */
#define ANSWER_KEEP 16384

int url_parse(const char *text, url_t *u) {
  memset(u, 0, sizeof *u);
  const char *rest;
  int https = 0;
  if (strncasecmp(text, "http://", 7) == 0) rest = text + 7;
  else if (strncasecmp(text, "https://", 8) == 0) rest = text + 8, https = 1;
  else return -1;
  size_t auth_len = strcspn(rest, "/?#");
  if (auth_len == 0 || auth_len >= sizeof u->authority) return -1;
  memcpy(u->authority, rest, auth_len);
  if (memchr(u->authority, '@', auth_len)) return -1; /* credentials in the URL: not supported */
  const char *host = u->authority, *port = NULL;
  size_t host_len;
  if (host[0] == '[') {
    const char *close = strchr(host, ']');
    if (!close) return -1;
    host_len = (size_t)(close - host - 1);
    host++;
    if (close[1] == ':') port = close + 2;
    else if (close[1]) return -1;
  } else {
    const char *colon = strchr(host, ':');
    host_len = colon ? (size_t)(colon - host) : strlen(host);
    if (colon) port = colon + 1;
  }
  if (host_len == 0 || host_len >= sizeof u->host) return -1;
  memcpy(u->host, host, host_len);
  if (port && *port) {
    if (strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535) return -1;
    snprintf(u->port, sizeof u->port, "%s", port);
  } else snprintf(u->port, sizeof u->port, "%s", https ? "443" : "80");
  const char *path = rest + auth_len;
  size_t path_len = strcspn(path, "?#");
  while (path_len > 0 && path[path_len - 1] == '/') path_len--;
  if (path_len >= sizeof u->path) return -1;
  memcpy(u->path, path, path_len);
  return https;
}

#define RESOLVE_AGAIN_MS 30000

/* The address to connect to: the cached one, or resolved now. */
static int resolve(url_t *u) {
  int64_t now = mono_ms();
  if (u->resolved && !(u->stale && now - u->resolved_at >= RESOLVE_AGAIN_MS)) return 0;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  int rc = getaddrinfo(u->host, u->port, &hints, &ai);
  if (rc == EAI_NONAME) {
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    rc = getaddrinfo(u->host, u->port, &hints, &ai);
  }
  u->resolved_at = now;
  if (rc != 0 || !ai || ai->ai_addrlen > sizeof u->addr) {
    if (ai) freeaddrinfo(ai);
    return u->resolved ? 0 : rc ? rc : EAI_FAIL;
  }
  memcpy(u->addr, ai->ai_addr, ai->ai_addrlen);
  u->addrlen = ai->ai_addrlen;
  u->family = ai->ai_family;
  u->resolved = true;
  u->stale = false;
  freeaddrinfo(ai);
  return 0;
}

static void fail(http_req_t *r, const char *error) {
  /* A connection that failed may mean the name now points elsewhere. */
  if ((r->state == HTTP_CONNECTING || r->state == HTTP_IDLE) && r->url) r->url->stale = true;
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  r->status = 0;
  snprintf(r->error, sizeof r->error, "%s", error);
  r->state = HTTP_DONE;
}

void http_reset(http_req_t *r) {
  if (r->state != HTTP_IDLE && r->fd >= 0) close(r->fd);
  r->fd = -1;
  r->state = HTTP_IDLE;
  r->out.len = r->in.len = r->text.len = 0;
  r->off = 0;
  r->status = 0;
  r->retry_after_s = 0;
  r->error[0] = 0;
}

void http_start(http_req_t *r, url_t *base, const char *path, const char *headers, const char *body, size_t n, int timeout_ms) {
  http_reset(r);
  r->url = base;
  r->deadline = mono_ms() + timeout_ms;
  buf_fmt(&r->out, "POST %s%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n", base->path, path, base->authority, headers, n);
  buf_add(&r->out, body, n);

  int rc = resolve(base);
  if (rc != 0) {
    fail(r, rc == EAI_AGAIN ? "EAI_AGAIN" : "ENOTFOUND");
    return;
  }
  r->fd = socket(base->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (r->fd < 0) {
    fail(r, errno_code(errno));
    return;
  }
  int one = 1;
  setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  rc = connect(r->fd, (const struct sockaddr *)base->addr, base->addrlen);
  int err = errno;
  if (rc == 0) r->state = HTTP_WRITING;
  else if (err == EINPROGRESS || err == EINTR) r->state = HTTP_CONNECTING;
  else fail(r, errno_code(err));
}

void http_pollfd(const http_req_t *r, struct pollfd *p) {
  p->fd = -1;
  p->events = 0;
  p->revents = 0;
  if (r->state == HTTP_CONNECTING || r->state == HTTP_WRITING) p->fd = r->fd, p->events = POLLOUT;
  else if (r->state == HTTP_READING) p->fd = r->fd, p->events = POLLIN;
}

int64_t http_deadline(const http_req_t *r) {
  /* A request that ended at its start (no address, no socket) is settled on the loop's next turn. */
  if (r->state == HTTP_DONE) return 0;
  return r->state == HTTP_CONNECTING || r->state == HTTP_WRITING || r->state == HTTP_READING ? r->deadline : INT64_MAX;
}

/* Parses what was read; true when the answer is complete (or must be taken as it is: at EOF). */
static bool parse_answer(http_req_t *r, bool eof) {
  char *head_end = r->in.p ? strstr(r->in.p, "\r\n\r\n") : NULL;
  if (!head_end) {
    if (eof) fail(r, r->in.len ? "bad answer" : "ECONNRESET");
    return eof;
  }
  int status = 0;
  if (sscanf(r->in.p, "HTTP/%*d.%*d %d", &status) != 1 || status < 100) {
    fail(r, "bad answer");
    return true;
  }
  long long content_length = -1;
  r->retry_after_s = 0;
  for (char *line = strstr(r->in.p, "\r\n") + 2; line < head_end; line = strstr(line, "\r\n") + 2) {
    if (strncasecmp(line, "content-length:", 15) == 0) content_length = strtoll(line + 15, NULL, 10);
    if (strncasecmp(line, "retry-after:", 12) == 0) {
      char *end;
      double v = strtod(line + 12, &end);
      while (*end == ' ' || *end == '\t') end++;
      if (end != line + 12 && (*end == '\r') && v > 0) r->retry_after_s = v;
    }
  }
  const char *body = head_end + 4;
  size_t have = r->in.len - (size_t)(body - r->in.p);
  if (!eof && content_length >= 0 && have < (size_t)content_length && r->in.len < ANSWER_KEEP) return false;
  if (!eof && content_length < 0) return false;
  r->status = status;
  r->text.len = 0;
  if (content_length >= 0 && have > (size_t)content_length) have = (size_t)content_length;
  buf_add(&r->text, body, have < 4096 ? have : 4096);
  close(r->fd);
  r->fd = -1;
  r->state = HTTP_DONE;
  return true;
}

void http_step(http_req_t *r, short revents) {
  if (r->state == HTTP_IDLE || r->state == HTTP_DONE) return;
  if (mono_ms() >= r->deadline) {
    fail(r, "ETIMEDOUT");
    return;
  }
  if (r->state == HTTP_CONNECTING && revents) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
      fail(r, errno_code(err));
      return;
    }
    r->state = HTTP_WRITING;
  }
  if (r->state == HTTP_WRITING) {
    while (r->off < r->out.len) {
      ssize_t n = send(r->fd, r->out.p + r->off, r->out.len - r->off, MSG_NOSIGNAL);
      if (n > 0) {
        r->off += (size_t)n;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      fail(r, errno_code(errno));
      return;
    }
    r->state = HTTP_READING;
    return;
  }
  if (r->state == HTTP_READING && revents) {
    char chunk[4096];
    for (;;) {
      ssize_t n = recv(r->fd, chunk, sizeof chunk, 0);
      if (n > 0) {
        if (r->in.len < ANSWER_KEEP) buf_add(&r->in, chunk, (size_t)n);
        if (parse_answer(r, false)) return;
        continue;
      }
      if (n == 0) {
        parse_answer(r, true);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      /* A reset after a complete head still carries the status. */
      if (!parse_answer(r, true)) fail(r, errno_code(errno));
      return;
    }
  }
}

/*
 * Telemetry to faultline, never in the command's way. Log records (heartbeats, exits) go as OTLP/JSON to
 * <endpoint>/v1/logs through a bounded queue: while faultline is unreachable they wait, retried with
 * exponential backoff and jitter (honouring Retry-After); when the queue is full the oldest heartbeat goes
 * first, an exit only when nothing but exits is left, and every drop is counted. Check pings go out in
 * order, one at a time, each retried for a while. Same behaviour and messages as otlp.ts and ping.ts.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "wrapper.h"

#define BATCH 200
#define TIMEOUT_MS 2000
#define MIN_BACKOFF_MS 250.0
#define MAX_BACKOFF_MS 10000.0
/* Pings waiting behind the one being sent: a restart loop while faultline is down must not grow memory. */
#define MAX_PINGS 64

static double jitter(void) {
  unsigned r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r) r = (unsigned)mono_ms() * 2654435761u;
  return (double)r / 4294967296.0;
}

static void record_free(record_t *r) {
  free(r->attributes);
  r->attributes = NULL;
}

static void take(sender_t *s, size_t i) {
  record_free(&s->queue[i]);
  memmove(&s->queue[i], &s->queue[i + 1], (s->qlen - i - 1) * sizeof *s->queue);
  s->qlen--;
}

/* Keeps the queue (with what is in flight) within max_records: oldest heartbeats first, then oldest exits. */
static void bound(sender_t *s) {
  while (s->qlen + s->nin > s->max_records && s->qlen > 0) {
    size_t i = 0;
    while (i < s->qlen && s->queue[i].kind != KIND_HEARTBEAT) i++;
    if (i == s->qlen) i = 0;
    if (s->queue[i].kind == KIND_HEARTBEAT) s->dropped_heartbeats++;
    else s->dropped_events++;
    if (s->failing) s->dropped_while_failing++;
    take(s, i);
  }
}

static void pump(sender_t *s);

void sender_enqueue(sender_t *s, int kind, int pid, int64_t time_ms, int severity, char *attributes) {
  if (s->qlen == s->qcap) {
    size_t cap = s->qcap ? s->qcap * 2 : 64;
    record_t *q = realloc(s->queue, cap * sizeof *q);
    if (!q) {
      free(attributes);
      s->dropped_events += kind == KIND_EVENT, s->dropped_heartbeats += kind == KIND_HEARTBEAT;
      return;
    }
    s->queue = q;
    s->qcap = cap;
  }
  s->queue[s->qlen++] = (record_t){.kind = kind, .pid = pid, .time_ms = time_ms, .severity = severity, .attributes = attributes};
  bound(s);
  if (!s->retry_at) pump(s);
}

/* The request body: records grouped by resource (the resource differs per run only by process.pid). */
static void render(sender_t *s, buf_t *b) {
  int64_t observed = wall_ms();
  buf_str(b, "{\"resourceLogs\":[");
  bool first_group = true;
  for (size_t i = 0; i < s->nin; i++) {
    int pid = s->inflight[i].pid;
    bool seen = false;
    for (size_t j = 0; j < i && !seen; j++) seen = s->inflight[j].pid == pid;
    if (seen) continue;
    if (!first_group) buf_add(b, ",", 1);
    first_group = false;
    buf_str(b, "{\"resource\":{\"attributes\":[");
    buf_str(b, s->resource_fixed);
    if (pid >= 0) buf_fmt(b, ",{\"key\":\"process.pid\",\"value\":{\"intValue\":\"%d\"}}", pid);
    buf_str(b, s->resource_tail);
    buf_str(b, "]},\"scopeLogs\":[{\"scope\":{\"name\":\"faultline.run\",\"version\":");
    json_string(b, s->scope_version, strlen(s->scope_version));
    buf_str(b, "},\"logRecords\":[");
    bool first = true;
    for (size_t j = i; j < s->nin; j++) {
      record_t *r = &s->inflight[j];
      if (r->pid != pid) continue;
      if (!first) buf_add(b, ",", 1);
      first = false;
      buf_fmt(b, "{\"timeUnixNano\":\"%lld000000\",\"observedTimeUnixNano\":\"%lld000000\",\"eventName\":\"%s\",", (long long)r->time_ms,
              (long long)observed, r->kind == KIND_HEARTBEAT ? "faultline.heartbeat" : "process.exit");
      if (r->severity) buf_fmt(b, "\"severityNumber\":%d,\"severityText\":\"%s\",", r->severity, r->severity >= 17 ? "ERROR" : "INFO");
      buf_str(b, "\"attributes\":[");
      buf_str(b, r->attributes);
      buf_str(b, "]}");
    }
    buf_str(b, "]}]}");
  }
  buf_str(b, "]}");
}

static void pump(sender_t *s) {
  if (s->req.state != HTTP_IDLE || s->qlen == 0) return;
  size_t n = s->qlen < BATCH ? s->qlen : BATCH;
  s->inflight = malloc(n * sizeof *s->inflight);
  if (!s->inflight) return;
  memcpy(s->inflight, s->queue, n * sizeof *s->queue);
  memmove(s->queue, s->queue + n, (s->qlen - n) * sizeof *s->queue);
  s->qlen -= n;
  s->nin = n;
  buf_t body = {0};
  render(s, &body);
  http_start(&s->req, &s->url, "/v1/logs", s->headers, body.p, body.len, TIMEOUT_MS);
  buf_free(&body);
}

static void settle(sender_t *s) {
  http_req_t *r = &s->req;
  bool ok = r->status >= 200 && r->status < 300;
  bool retryable = r->status == 0 || r->status == 408 || r->status == 429 || r->status == 500 || r->status == 502 || r->status == 503 || r->status == 504;
  char error[300];
  if (r->status) {
    buf_t text = {0};
    utf8_clean(&text, r->text.p ? r->text.p : "", r->text.len > 200 ? 200 : r->text.len);
    snprintf(error, sizeof error, "HTTP %d%s%s", r->status, text.len ? ": " : "", text.len ? text.p : "");
    buf_free(&text);
  } else snprintf(error, sizeof error, "%s", r->error);
  if (!ok) snprintf(s->last_error, sizeof s->last_error, "%s", error);
  size_t n = s->nin;
  if (ok || !retryable) {
    if (ok) s->delivered += (int64_t)n;
    else {
      s->rejected += (int64_t)n;
      say("faultline refused %zu records: %s", n, error);
    }
    for (size_t i = 0; i < n; i++) record_free(&s->inflight[i]);
    free(s->inflight);
    s->inflight = NULL;
    s->nin = 0;
    s->backoff_ms = MIN_BACKOFF_MS;
    if (s->failing) {
      s->failing = false;
      if (s->dropped_while_failing) say("telemetry reaches %s again (%lld records dropped meanwhile)", s->endpoint, (long long)s->dropped_while_failing);
      else say("telemetry reaches %s again", s->endpoint);
      s->dropped_while_failing = 0;
    }
    http_reset(r);
    pump(s);
    return;
  }
  /* Back to the front of the queue, then bounded again. */
  if (s->qlen + n > s->qcap) {
    record_t *q = realloc(s->queue, (s->qlen + n) * sizeof *q);
    if (q) s->queue = q, s->qcap = s->qlen + n;
  }
  if (s->qlen + n <= s->qcap) {
    memmove(s->queue + n, s->queue, s->qlen * sizeof *s->queue);
    memcpy(s->queue, s->inflight, n * sizeof *s->queue);
    s->qlen += n;
  } else
    /* No memory to keep them: dropped, and counted as such. */
    for (size_t i = 0; i < n; i++) {
      if (s->inflight[i].kind == KIND_HEARTBEAT) s->dropped_heartbeats++;
      else s->dropped_events++;
      record_free(&s->inflight[i]);
    }
  free(s->inflight);
  s->inflight = NULL;
  s->nin = 0;
  bound(s);
  if (!s->failing) {
    s->failing = true;
    say("cannot send telemetry to %s (%s); keeping up to %zu records and retrying", s->endpoint, error, s->max_records);
  }
  double max = s->flushing ? 250 : MAX_BACKOFF_MS;
  double wait = s->backoff_ms * (0.5 + jitter() / 2);
  if (r->retry_after_s * 1000 > wait) wait = r->retry_after_s * 1000;
  if (wait > max) wait = max;
  s->backoff_ms = s->backoff_ms * 2 < MAX_BACKOFF_MS ? s->backoff_ms * 2 : MAX_BACKOFF_MS;
  s->retry_at = mono_ms() + (int64_t)wait;
  http_reset(r);
}

void sender_flushing(sender_t *s) {
  s->flushing = true;
  s->retry_at = 0;
  pump(s);
}

bool sender_idle(const sender_t *s) { return s->qlen == 0 && s->req.state == HTTP_IDLE; }

void sender_counts(const sender_t *s, int64_t *pending_heartbeats, int64_t *pending_events) {
  *pending_heartbeats = *pending_events = 0;
  for (size_t i = 0; i < s->nin; i++) (s->inflight[i].kind == KIND_HEARTBEAT ? (*pending_heartbeats)++ : (*pending_events)++);
  for (size_t i = 0; i < s->qlen; i++) (s->queue[i].kind == KIND_HEARTBEAT ? (*pending_heartbeats)++ : (*pending_events)++);
}

void sender_pollfd(const sender_t *s, struct pollfd *p) { http_pollfd(&s->req, p); }

int64_t sender_deadline(const sender_t *s) {
  int64_t d = http_deadline(&s->req);
  return s->retry_at && s->retry_at < d ? s->retry_at : d;
}

void sender_step(sender_t *s, short revents) {
  http_step(&s->req, revents);
  if (s->req.state == HTTP_DONE) settle(s);
  if (s->retry_at && mono_ms() >= s->retry_at) {
    s->retry_at = 0;
    pump(s);
  }
}

/* ---- check pings ---- */

struct ping {
  struct ping *next;
  char *path;
  char *body;
  size_t body_len;
};

#define PING_RETRY_FOR_MS 30000

static void ping_begin(pinger_t *p) {
  if (!p->head || p->req.state != HTTP_IDLE || p->retry_at) return;
  http_start(&p->req, &p->url, p->head->path, p->headers, p->head->body ? p->head->body : "", p->head->body_len, TIMEOUT_MS);
}

static void enqueue(pinger_t *p, const char *suffix, const char *body, size_t n) {
  if (p->queued >= MAX_PINGS) return;
  struct ping *g = calloc(1, sizeof *g);
  if (!g) return;
  buf_t path = {0};
  buf_fmt(&path, "/ping/%s%s", p->slug, suffix);
  g->path = path.p;
  if (body) {
    buf_t clean = {0};
    utf8_clean(&clean, body, n);
    g->body = clean.p;
    g->body_len = clean.len;
  }
  if (p->tail) p->tail->next = g;
  else p->head = g, p->until = mono_ms() + PING_RETRY_FOR_MS, p->backoff_ms = 200;
  p->tail = g;
  p->queued++;
  ping_begin(p);
}

void pinger_start(pinger_t *p, const char *rid) {
  char suffix[80];
  snprintf(suffix, sizeof suffix, "/start?rid=%s", rid);
  enqueue(p, suffix, NULL, 0);
}

void pinger_finish(pinger_t *p, const char *rid, int exit_code, const char *log, size_t n) {
  char suffix[96];
  if (exit_code >= 0 && exit_code <= 255) snprintf(suffix, sizeof suffix, "/%d?rid=%s", exit_code, rid);
  else snprintf(suffix, sizeof suffix, "/fail?rid=%s", rid);
  enqueue(p, suffix, log, n);
}

static void ping_done(pinger_t *p) {
  struct ping *g = p->head;
  p->head = g->next;
  if (!p->head) p->tail = NULL;
  p->queued--;
  free(g->path);
  free(g->body);
  free(g);
  p->until = mono_ms() + PING_RETRY_FOR_MS;
  p->backoff_ms = 200;
  http_reset(&p->req);
  ping_begin(p);
}

void pinger_step(pinger_t *p, short revents) {
  http_step(&p->req, revents);
  if (p->req.state == HTTP_DONE) {
    http_req_t *r = &p->req;
    char error[400];
    if (r->status) {
      buf_t text = {0};
      utf8_clean(&text, r->text.p ? r->text.p : "", r->text.len > 300 ? 300 : r->text.len);
      snprintf(error, sizeof error, "HTTP %d: %s", r->status, text.p ? text.p : "");
      buf_free(&text);
    } else snprintf(error, sizeof error, "%s", r->error);
    const char *url = p->head->path;
    if (r->status >= 200 && r->status < 300) {
      p->sent++;
      ping_done(p);
    } else if (r->status && r->status != 429 && r->status < 500) {
      /* Not worth retrying (an unknown check, a bad slug, a missing token): say why once. */
      p->failed++;
      if (strcmp(error, p->last_error) != 0) say("ping %s%s refused: %s", p->base, url, error);
      snprintf(p->last_error, sizeof p->last_error, "%s", error);
      ping_done(p);
    } else if (mono_ms() + p->backoff_ms > p->until) {
      p->failed++;
      say("ping %s%s not delivered: %s", p->base, url, error);
      ping_done(p);
    } else {
      p->retry_at = mono_ms() + p->backoff_ms;
      p->backoff_ms = p->backoff_ms * 2 < 5000 ? p->backoff_ms * 2 : 5000;
      http_reset(r);
    }
  }
  if (p->retry_at && mono_ms() >= p->retry_at) {
    p->retry_at = 0;
    ping_begin(p);
  }
}

bool pinger_idle(const pinger_t *p) { return !p->head; }

void pinger_pollfd(const pinger_t *p, struct pollfd *pfd) { http_pollfd(&p->req, pfd); }

int64_t pinger_deadline(const pinger_t *p) {
  int64_t d = http_deadline(&p->req);
  return p->retry_at && p->retry_at < d ? p->retry_at : d;
}

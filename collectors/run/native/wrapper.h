/*
 * faultline run, native: the supervising process of `faultline run` in C (C11, libc only), so that no Node
 * process stays resident beside the command it watches. It speaks the same CLI, environment and wire
 * format as the Node implementation in collectors/run/ (TypeScript), which stays the reference (and the fallback).
 */
#ifndef FAULTLINE_RUN_WRAPPER_H
#define FAULTLINE_RUN_WRAPPER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ---- util.c: growable buffers, JSON, clocks, the wrapper's own log lines ---- */

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

void buf_add(buf_t *b, const void *s, size_t n);
void buf_str(buf_t *b, const char *s);
void buf_fmt(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(buf_t *b);
/* Appends `s` as a JSON string (quotes included); invalid UTF-8 becomes U+FFFD, as Node's decoder does. */
void json_string(buf_t *b, const char *s, size_t n);
/* Appends `s` with invalid UTF-8 replaced by U+FFFD. */
void utf8_clean(buf_t *b, const char *s, size_t n);
/* Appends a number the way JSON.stringify writes it (shortest round-trip form). */
void json_number(buf_t *b, double v);

/* OTLP attributes (a KeyValue list being written); null attributes are simply not added. */
typedef struct {
  buf_t b;
  bool any;
} attrs_t;
void attr_str(attrs_t *a, const char *key, const char *value);
void attr_int(attrs_t *a, const char *key, int64_t value);
/* A number: written as intValue when it is whole, as JavaScript's Number.isInteger decides. */
void attr_num(attrs_t *a, const char *key, double value);
void attr_bool(attrs_t *a, const char *key, bool value);

int64_t mono_ms(void);
double mono_msf(void);
int64_t wall_ms(void);
/* "850 ms", "1.5 s": durations in the wrapper's messages. */
const char *fmt_ms(int64_t ms, char out[32]);
/* One line on the wrapper's stderr, prefixed "faultline run: ". */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes all of p to fd (EINTR, partial writes, a non-blocking fd); gives up on a dead reader. */
bool write_all(int fd, const char *p, size_t n);
/* Node's name for a signal number ("SIGTERM"), or NULL. */
const char *signal_name(int sig);
/* A node-style errno code ("ECONNREFUSED"). */
const char *errno_code(int err);

/* ---- proc.c: what /proc and the memory cgroup say about the command ---- */

typedef struct {
  int64_t rss, hwm, cpu_ticks;
} proc_sample_t;

/* One sample of the process tree rooted at pid; false when the root is gone (or a zombie). */
bool sample_tree(pid_t pid, proc_sample_t *out);

typedef struct {
  int64_t limit; /* -1: none */
  int kind;      /* 0: no memory cgroup seen, 1: v1, 2: v2 */
  char events[640];
} cgroup_t;

void cgroup_find(cgroup_t *c);
/* The cgroup's OOM-kill counter now, or -1 when the kernel does not say. */
int64_t cgroup_oom_kills(const cgroup_t *c);

/* ---- http.c: one HTTP/1.1 POST over a non-blocking socket, driven by poll() ---- */

typedef struct {
  char host[256];  /* as written in the URL (brackets removed) */
  char port[8];
  char authority[300]; /* host[:port] for the Host header */
  char path[1024]; /* the URL's path prefix, without a trailing slash */
  /* The host's address, resolved once and again only after a failed connection (at most every 30 s):
     resolving a name blocks, and the loop must not stall on a slow resolver at every heartbeat. */
  bool resolved, stale;
  int64_t resolved_at;
  int family;
  socklen_t addrlen;
  unsigned char addr[128];
} url_t;

/* 0: an http:// URL; 1: https:// (not spoken here); -1: not a URL. */
int url_parse(const char *text, url_t *u);

enum { HTTP_IDLE, HTTP_CONNECTING, HTTP_WRITING, HTTP_READING, HTTP_DONE };

typedef struct {
  int state;
  int fd;
  url_t *url;
  buf_t out;
  size_t off;
  buf_t in;
  int64_t deadline;
  /* The answer, once DONE: status > 0, or status 0 and the error code. */
  int status;
  double retry_after_s; /* 0: none */
  char error[48];
  buf_t text; /* the body, first 4 KiB */
} http_req_t;

/* Starts a POST of body to base's path + path; the request is DONE at once when it cannot even start. */
void http_start(http_req_t *r, url_t *base, const char *path, const char *headers, const char *body, size_t n, int timeout_ms);
/* The pollfd for a request in flight (fd -1 when none). */
void http_pollfd(const http_req_t *r, struct pollfd *p);
/* Advances the request after poll() (revents) or on its deadline. */
void http_step(http_req_t *r, short revents);
/* Ends a request and forgets its answer. */
void http_reset(http_req_t *r);
int64_t http_deadline(const http_req_t *r);

/* ---- telemetry.c: the bounded OTLP log-record queue, and check pings ---- */

enum { KIND_HEARTBEAT, KIND_EVENT };

typedef struct {
  int kind;
  int pid; /* the command's pid for process.pid, or -1 */
  int64_t time_ms;
  int severity; /* 0: none, 9: INFO, 17: ERROR */
  char *attributes; /* the record's KeyValue list, rendered */
} record_t;

typedef struct {
  const char *endpoint;
  url_t url;
  const char *headers; /* "name: value\r\n" lines */
  const char *resource_fixed; /* the resource attributes besides process.pid, rendered in two parts */
  const char *resource_tail;
  const char *scope_version;
  size_t max_records;
  record_t *queue;
  size_t qlen, qcap;
  record_t *inflight;
  size_t nin;
  http_req_t req;
  int64_t retry_at; /* 0: no retry timer */
  double backoff_ms;
  bool failing, flushing;
  int64_t delivered, dropped_heartbeats, dropped_events, rejected, dropped_while_failing;
  char last_error[320];
} sender_t;

void sender_enqueue(sender_t *s, int kind, int pid, int64_t time_ms, int severity, char *attributes);
void sender_flushing(sender_t *s);
bool sender_idle(const sender_t *s);
void sender_counts(const sender_t *s, int64_t *pending_heartbeats, int64_t *pending_events);
void sender_pollfd(const sender_t *s, struct pollfd *p);
void sender_step(sender_t *s, short revents);
int64_t sender_deadline(const sender_t *s);

typedef struct ping ping_t;
typedef struct {
  const char *base;
  url_t url;
  const char *slug;
  const char *headers;
  ping_t *head, *tail;
  size_t queued;
  http_req_t req;
  int64_t retry_at, until, backoff_ms;
  int64_t sent, failed;
  char last_error[400];
} pinger_t;

void pinger_start(pinger_t *p, const char *rid);
void pinger_finish(pinger_t *p, const char *rid, int exit_code, const char *log, size_t n);
bool pinger_idle(const pinger_t *p);
void pinger_pollfd(const pinger_t *p, struct pollfd *pfd);
void pinger_step(pinger_t *p, short revents);
int64_t pinger_deadline(const pinger_t *p);

/* ---- child.c: one run of the command ---- */

#define TAIL_KEEP 16384

typedef struct {
  pid_t pid;
  bool alive;       /* not yet reaped */
  int spawn_error;  /* errno when it could not be started */
  int stderr_fd;    /* the read end of its stderr pipe, -1 once closed */
  int64_t started_wall, started_mono, exited_mono, stderr_grace_until;
  int code, signal; /* code -1 when it died of a signal */
  int64_t runtime_ms;
  int64_t max_rss, last_rss; /* -1: never sampled */
  bool cpu_seen;
  int64_t cpu_ticks;
  double cpu_at;
  int64_t next_sample, next_beat;
  int64_t oom_before;
  char tail[TAIL_KEEP];
  size_t tail_len;
} run_t;

typedef struct {
  int64_t rss, max_rss;
  double cpu; /* < 0: not known yet */
} vitals_t;

void run_start(run_t *r, const char *command, char *const argv[], char *const envp[], const cgroup_t *cg);
void run_tail_push(run_t *r, const char *p, size_t n);
/* The end of stderr: the last 50 lines, at most 8 KiB, as the Node StreamTail keeps it. */
void run_tail_value(const run_t *r, buf_t *out);
/* Samples the tree; false when it is gone. */
bool run_sample(run_t *r, proc_sample_t *s);
/* A sample for a heartbeat: updates the CPU meter. */
bool run_vitals(run_t *r, vitals_t *v);

/* ---- options.c: the command line ---- */

enum { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS };

typedef struct {
  bool help;
  char **command; /* the command and its arguments */
  int ncommand;
  const char *service, *instance, *service_version, *otlp_endpoint, *url, *check, *token;
  int restart;
  int64_t restart_delay_ms, restart_max_delay_ms, max_restarts; /* max_restarts -1: never give up */
  int64_t interval_ms, flush_timeout_ms;
  size_t buffer;
} options_t;

/* Parses `[options] -- command args…`; a bad line is a usage error: message, exit 2. */
void parse_options(int argc, char **argv, options_t *o);

/* ---- identity.c: resource, the command's environment, request headers ---- */

typedef struct {
  char **keys, **values;
  size_t n;
} kv_t;

/* key=value pairs, comma-separated and percent-encoded (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS). */
void parse_pairs(const char *text, kv_t *kv);
const char *kv_get(const kv_t *kv, const char *key);

typedef struct {
  const char *service, *instance, *version, *host;
  kv_t attrs; /* OTEL_RESOURCE_ATTRIBUTES */
} identity_t;

void identity_make(identity_t *id, const options_t *o, pid_t wrapper_pid);
void identity_resource(const identity_t *id, const options_t *o, char **fixed, char **tail);
char **identity_child_env(const identity_t *id, const options_t *o);
void identity_headers(const options_t *o, char **otlp, char **ping);

#endif

/*
 * `faultline run [options] -- command args…`, native. Runs the command, sends heartbeats with its vital
 * signs while it lives, reports its end as a `process.exit` event, passes signals on, restarts it when asked
 * (like systemd's Restart=), pings a check when it is a cron job, and exits with the command's exit code.
 * One thread, one poll() loop: signals arrive through a signalfd, the command's stderr through a pipe, and
 * telemetry through non-blocking sockets, so the command never waits on its watcher.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wrapper.h"

#ifndef FAULTLINE_VERSION
#define FAULTLINE_VERSION ""
#endif

/* A run that stayed up this long resets the restart delay. */
#define STABLE_RUN_MS 10000
/* When the first heartbeat of a run goes out (or after one interval, when that is shorter). */
#define FIRST_HEARTBEAT_MS 200
/* How long to wait for the rest of stderr after the exit (a background grandchild may hold it open). */
#define STDERR_GRACE_MS 200
/* RSS at or above this share of the cgroup limit at a SIGKILL counts as an OOM kill. */
#define OOM_RATIO 0.9
/* Stderr pipes of earlier runs still held open by their background processes: passed on, not kept. */
#define MAX_STRAYS 8

enum phase { PHASE_RUN, PHASE_SLEEP, PHASE_IDLE };

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static struct {
  options_t opts;
  cgroup_t cgroup;
  sender_t sender;
  pinger_t pinger;
  bool pinging;
  int sigfd;
  enum phase phase;
  run_t run;
  unsigned forwarded; /* bit n: signal n passed on to the running command */
  int stop_signal;
  int exit_code;
  int strays[MAX_STRAYS];
} w;

static void uuid4(char out[37]) {
  unsigned char b[16];
  if (getrandom(b, sizeof b, 0) != sizeof b)
    for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)(mono_ms() * 31 + (int64_t)i * 17 + getpid());
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8],
           b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ---- signals ---- */

static void handle_signal(int sig) {
  bool stop = sig == SIGTERM || sig == SIGINT;
  if (stop && !w.stop_signal) w.stop_signal = sig;
  if (w.phase == PHASE_RUN && w.run.alive) {
    if (kill(w.run.pid, sig) == 0) w.forwarded |= 1u << sig;
    return;
  }
  /* PHASE_SLEEP: the loop sees stop_signal and ends the wait. */
  if (stop && w.phase == PHASE_IDLE) {
    say("%s: exiting without waiting for telemetry", signal_name(sig));
    exit(w.exit_code);
  }
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    if (pid != w.run.pid || !w.run.alive) continue;
    w.run.alive = false;
    w.run.exited_mono = mono_ms();
    w.run.runtime_ms = wall_ms() - w.run.started_wall;
    w.run.stderr_grace_until = w.run.exited_mono + STDERR_GRACE_MS;
    if (WIFSIGNALED(status)) w.run.code = -1, w.run.signal = WTERMSIG(status);
    else w.run.code = WEXITSTATUS(status), w.run.signal = 0;
  }
}

static void read_signals(void) {
  struct signalfd_siginfo si[8];
  for (;;) {
    ssize_t n = read(w.sigfd, si, sizeof si);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    for (size_t i = 0; i < (size_t)n / sizeof *si; i++) {
      if ((int)si[i].ssi_signo == SIGCHLD) reap();
      else handle_signal((int)si[i].ssi_signo);
    }
  }
}

/* ---- the command's stderr ---- */

/* Passes what the pipe has on to the wrapper's stderr; false at its end. */
static bool pass_stderr(int fd, run_t *keep) {
  char chunk[16384];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n > 0) {
      write_all(2, chunk, (size_t)n);
      if (keep) run_tail_push(keep, chunk, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
}

/* ---- heartbeats and the exit event ---- */

static void heartbeat(int restarts) {
  vitals_t v;
  if (!run_vitals(&w.run, &v)) return;
  attrs_t a = {0};
  attr_str(&a, "event.name", "faultline.heartbeat");
  attr_int(&a, "faultline.heartbeat.interval_ms", w.opts.interval_ms);
  /* From outside the process: proves it exists, not that it responds (see the detector). */
  attr_str(&a, "faultline.heartbeat.source", "wrapper");
  attr_int(&a, "process.memory.rss", v.rss);
  if (w.cgroup.limit >= 0) attr_int(&a, "process.memory.limit", w.cgroup.limit);
  attr_int(&a, "process.memory.max_rss", v.max_rss);
  if (v.cpu >= 0) attr_num(&a, "process.cpu.utilization", v.cpu);
  attr_int(&a, "process.restart.count", restarts);
  sender_enqueue(&w.sender, KIND_HEARTBEAT, w.run.pid, wall_ms(), 0, a.b.p);
}

static const char *exit_reason(const run_t *r, bool oom_kill) {
  if (r->signal == SIGKILL && (oom_kill || (w.cgroup.limit >= 0 && (double)(r->last_rss > 0 ? r->last_rss : 0) >= OOM_RATIO * (double)w.cgroup.limit)))
    return "OOMKilled";
  if (r->signal) return "signal";
  return r->code == 0 ? "graceful" : "error";
}

static void exit_event(const run_t *r, const char *tail, bool intended, int restarts, int64_t restart_in_ms, int64_t dropped) {
  int64_t oom_after = cgroup_oom_kills(&w.cgroup);
  bool oom_kill = r->oom_before >= 0 && oom_after >= 0 && oom_after > r->oom_before;
  const char *reason = exit_reason(r, oom_kill);
  bool fine = intended || strcmp(reason, "graceful") == 0;
  static const char *const policies[] = {"no", "on-failure", "always"};
  attrs_t a = {0};
  attr_str(&a, "event.name", "process.exit");
  if (r->code >= 0) attr_int(&a, "process.exit.code", r->code);
  if (r->signal) attr_str(&a, "process.exit.signal", signal_name(r->signal));
  attr_str(&a, "process.exit.reason", reason);
  attr_bool(&a, "process.exit.intended", intended);
  attr_int(&a, "process.runtime.ms", r->runtime_ms);
  if (r->max_rss >= 0) attr_int(&a, "process.memory.max_rss", r->max_rss);
  if (w.cgroup.limit >= 0) attr_int(&a, "process.memory.limit", w.cgroup.limit);
  attr_str(&a, "process.stderr.tail", tail);
  attr_int(&a, "process.restart.count", restarts);
  attr_str(&a, "faultline.restart.policy", policies[w.opts.restart]);
  if (restart_in_ms >= 0) attr_int(&a, "faultline.restart.in_ms", restart_in_ms);
  if (dropped) attr_int(&a, "faultline.telemetry.dropped", dropped);
  sender_enqueue(&w.sender, KIND_EVENT, r->pid, r->started_wall + r->runtime_ms, fine ? 9 : 17, a.b.p);
}

/* ---- the loop ---- */

static int64_t earliest(int64_t a, int64_t b) { return a < b ? a : b; }

/* One turn of the loop: waits for anything to do, at most until `until`, and does it. */
static void turn(int64_t until, int restarts) {
  struct pollfd fds[4 + MAX_STRAYS];
  int n = 0;
  fds[n++] = (struct pollfd){.fd = w.sigfd, .events = POLLIN};
  int stderr_at = -1;
  if (w.run.stderr_fd >= 0) stderr_at = n, fds[n++] = (struct pollfd){.fd = w.run.stderr_fd, .events = POLLIN};
  int sender_at = n++;
  sender_pollfd(&w.sender, &fds[sender_at]);
  int pinger_at = n++;
  if (w.pinging) pinger_pollfd(&w.pinger, &fds[pinger_at]);
  else fds[pinger_at] = (struct pollfd){.fd = -1};
  int strays_at = n;
  for (int i = 0; i < MAX_STRAYS; i++) fds[n++] = (struct pollfd){.fd = w.strays[i], .events = POLLIN};

  int64_t deadline = earliest(until, sender_deadline(&w.sender));
  if (w.pinging) deadline = earliest(deadline, pinger_deadline(&w.pinger));
  if (w.phase == PHASE_RUN && w.run.alive) deadline = earliest(deadline, earliest(w.run.next_sample, w.run.next_beat));
  if (w.phase == PHASE_RUN && !w.run.alive && w.run.stderr_fd >= 0) deadline = earliest(deadline, w.run.stderr_grace_until);
  int64_t now = mono_ms();
  int timeout = deadline <= now ? 0 : deadline - now > 60000 ? 60000 : (int)(deadline - now);
  if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR) return;

  if (fds[0].revents) read_signals();
  if (stderr_at >= 0 && fds[stderr_at].revents && !pass_stderr(w.run.stderr_fd, &w.run)) {
    close(w.run.stderr_fd);
    w.run.stderr_fd = -1;
  }
  for (int i = 0; i < MAX_STRAYS; i++)
    if (fds[strays_at + i].revents && !pass_stderr(w.strays[i], NULL)) {
      close(w.strays[i]);
      w.strays[i] = -1;
    }
  sender_step(&w.sender, fds[sender_at].revents);
  if (w.pinging) pinger_step(&w.pinger, fds[pinger_at].revents);

  now = mono_ms();
  if (w.phase == PHASE_RUN && w.run.alive && now >= w.run.next_sample) {
    proc_sample_t s;
    run_sample(&w.run, &s);
    int64_t period = w.opts.interval_ms < 250 ? w.opts.interval_ms : 250;
    w.run.next_sample = w.run.next_sample + period > now ? w.run.next_sample + period : now + period;
  }
  if (w.phase == PHASE_RUN && w.run.alive && now >= w.run.next_beat) {
    heartbeat(restarts);
    w.run.next_beat = w.run.next_beat + w.opts.interval_ms > now ? w.run.next_beat + w.opts.interval_ms : now + w.opts.interval_ms;
  }
}

/* Keeps a stderr pipe that a background process of the last run still holds open, to pass it on. */
static void keep_stray(int fd) {
  for (int i = 0; i < MAX_STRAYS; i++)
    if (w.strays[i] < 0) {
      w.strays[i] = fd;
      return;
    }
  close(fd);
}

/* ---- restarts (restart.ts) ---- */

static struct {
  int restarts;
  int64_t delay_ms;
} policy;

/* After a run: the delay before the next one, or -1 for none. Counts the restart. */
static int64_t restart_next(const run_t *r, bool intended) {
  const options_t *o = &w.opts;
  if (intended || o->restart == RESTART_NO) return -1;
  bool failed = r->signal || r->code != 0;
  if (o->restart == RESTART_ON_FAILURE && !failed) return -1;
  if (o->max_restarts >= 0 && policy.restarts >= o->max_restarts) return -1;
  if (r->runtime_ms >= STABLE_RUN_MS) policy.delay_ms = o->restart_delay_ms;
  int64_t delay = policy.delay_ms;
  int64_t doubled = policy.delay_ms * 2 > 1 ? policy.delay_ms * 2 : 1;
  policy.delay_ms = doubled < o->restart_max_delay_ms ? doubled : o->restart_max_delay_ms;
  policy.restarts++;
  return delay;
}

static int wrapper_exit_code(int code, int signal) { return signal ? 128 + signal : code >= 0 ? code : 1; }

static void describe_end(const run_t *r, char *out, size_t n) {
  char t[32];
  if (r->spawn_error) snprintf(out, n, "could not start (%s)", errno_code(r->spawn_error));
  else if (r->signal) snprintf(out, n, "died of %s after %s", signal_name(r->signal), fmt_ms(r->runtime_ms, t));
  else snprintf(out, n, "exited with code %d after %s", r->code, fmt_ms(r->runtime_ms, t));
}

static void report_delivery(void) {
  sender_t *s = &w.sender;
  int64_t ph, pe;
  sender_counts(s, &ph, &pe);
  if (s->dropped_heartbeats + s->dropped_events + ph + pe + s->rejected == 0) return;
  buf_t b = {0};
  char t[32];
#define PLURAL(n, what) (long long)(n), what, (n) == 1 ? "" : "s"
  buf_fmt(&b, "telemetry to %s: %lld delivered", w.opts.otlp_endpoint, (long long)s->delivered);
  if (s->dropped_heartbeats + s->dropped_events > 0) {
    buf_fmt(&b, ", dropped %lld %s%s", PLURAL(s->dropped_heartbeats, "heartbeat"));
    if (s->dropped_events) buf_fmt(&b, " and %lld %s%s", PLURAL(s->dropped_events, "exit event"));
    buf_fmt(&b, " (buffer of %zu full)", w.opts.buffer);
  }
  if (ph + pe > 0)
    buf_fmt(&b, ", %lld %s%s and %lld %s%s not delivered within %s", PLURAL(ph, "heartbeat"), PLURAL(pe, "exit event"), fmt_ms(w.opts.flush_timeout_ms, t));
  if (s->rejected) buf_fmt(&b, ", %lld %s%s refused", PLURAL(s->rejected, "record"));
  if (s->last_error[0]) buf_fmt(&b, " (last error: %s)", s->last_error);
  say("%s", b.p);
  buf_free(&b);
}

static void setup_signals(void) {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (size_t i = 0; i < sizeof FORWARDED / sizeof *FORWARDED; i++) sigaddset(&set, FORWARDED[i]);
  /* A Node process that exec'd the wrapper may leave dispositions: the blocked set goes to the signalfd. */
  for (size_t i = 0; i < sizeof FORWARDED / sizeof *FORWARDED; i++) signal(FORWARDED[i], SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  sigprocmask(SIG_SETMASK, &set, NULL);
  w.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (w.sigfd < 0) {
    say("cannot watch signals: %s", strerror(errno));
    exit(1);
  }
}

int main(int argc, char **argv) {
  parse_options(argc - 1, argv + 1, &w.opts);
  if (w.opts.help) {
    printf("Usage: faultline run [options] -- command [args…]\n(the native wrapper; \"faultline run --help\" describes every option)\n");
    return 0;
  }
  const options_t *o = &w.opts;
  for (int i = 0; i < MAX_STRAYS; i++) w.strays[i] = -1;
  setup_signals();
  identity_t id;
  identity_make(&id, o, getpid());
  char **env = identity_child_env(&id, o);
  cgroup_find(&w.cgroup);
  char *otlp_headers, *ping_headers;
  identity_headers(o, &otlp_headers, &ping_headers);
  char *fixed, *tail;
  identity_resource(&id, o, &fixed, &tail);
  w.sender = (sender_t){.endpoint = o->otlp_endpoint, .headers = otlp_headers, .resource_fixed = fixed, .resource_tail = tail,
                        .scope_version = FAULTLINE_VERSION, .max_records = o->buffer, .backoff_ms = 250, .req = {.fd = -1}};
  url_parse(o->otlp_endpoint, &w.sender.url);
  if (o->check) {
    w.pinging = true;
    w.pinger = (pinger_t){.base = o->url, .slug = o->check, .headers = ping_headers, .req = {.fd = -1}};
    url_parse(o->url, &w.pinger.url);
  }
  policy.delay_ms = o->restart_delay_ms;

  for (;;) {
    char rid[37];
    uuid4(rid);
    if (w.pinging) pinger_start(&w.pinger, rid);
    int restarts = policy.restarts;
    w.phase = PHASE_RUN;
    w.forwarded = 0;
    run_start(&w.run, o->command[0], o->command, env, &w.cgroup);
    run_t *r = &w.run;
    if (r->spawn_error) {
      r->code = r->spawn_error == EACCES ? 126 : 127;
      r->runtime_ms = wall_ms() - r->started_wall;
      buf_t m = {0};
      buf_fmt(&m, "faultline run: cannot run \"%s\": spawn %s %s\n", o->command[0], o->command[0], errno_code(r->spawn_error));
      run_tail_push(r, m.p, m.len);
      buf_free(&m);
    } else {
      proc_sample_t s;
      run_sample(r, &s);
      int64_t now = mono_ms();
      r->next_sample = now + (o->interval_ms < 250 ? o->interval_ms : 250);
      /* The first heartbeat waits a moment: right after exec the process has not even mapped its
         libraries, and a first sample of a few kilobytes would make any later size look like growth. */
      r->next_beat = now + (o->interval_ms < FIRST_HEARTBEAT_MS ? o->interval_ms : FIRST_HEARTBEAT_MS);
      while (r->alive || (r->stderr_fd >= 0 && mono_ms() < r->stderr_grace_until)) turn(INT64_MAX, restarts);
      if (r->stderr_fd >= 0) keep_stray(r->stderr_fd), r->stderr_fd = -1;
    }
    unsigned forwarded = w.forwarded;
    bool stop_forwarded = forwarded & ((1u << SIGTERM) | (1u << SIGINT));
    bool intended = stop_forwarded || (r->signal && (forwarded & (1u << r->signal)));
    int64_t delay = w.stop_signal ? -1 : restart_next(r, intended);
    buf_t tail_text = {0};
    buf_add(&tail_text, "", 0);
    run_tail_value(r, &tail_text);
    exit_event(r, tail_text.p, intended, restarts, delay, w.sender.dropped_heartbeats + w.sender.dropped_events);
    w.exit_code = wrapper_exit_code(r->code, r->signal);
    if (w.pinging) pinger_finish(&w.pinger, rid, w.exit_code, tail_text.p, tail_text.len);
    buf_free(&tail_text);
    if (r->spawn_error) say("cannot run \"%s\": spawn %s %s", o->command[0], o->command[0], errno_code(r->spawn_error));

    char end[128], t[32];
    describe_end(r, end, sizeof end);
    if (delay < 0) {
      if (o->restart != RESTART_NO && !intended && !w.stop_signal && o->max_restarts >= 0 && policy.restarts >= o->max_restarts)
        say("%s %s; not restarting: %d restarts (--max-restarts) used up", o->command[0], end, policy.restarts);
      break;
    }
    say("%s %s; restart %d in %s", o->command[0], end, policy.restarts, fmt_ms(delay, t));
    w.phase = PHASE_SLEEP;
    int64_t wake = mono_ms() + delay;
    while (!w.stop_signal && mono_ms() < wake) turn(wake, restarts);
    if (w.stop_signal) {
      w.exit_code = wrapper_exit_code(-1, w.stop_signal);
      say("stopped by %s while waiting to restart", signal_name(w.stop_signal));
      break;
    }
  }

  /* The command is done: deliver what is left, for a while only, then go with its exit code. */
  w.phase = PHASE_IDLE;
  sender_flushing(&w.sender);
  int64_t until = mono_ms() + o->flush_timeout_ms;
  while (mono_ms() < until && (!sender_idle(&w.sender) || (w.pinging && !pinger_idle(&w.pinger)))) turn(until, policy.restarts);
  report_delivery();
  if (w.pinging && !pinger_idle(&w.pinger)) {
    char t[32];
    say("check pings to %s not all delivered within %s", o->url, fmt_ms(o->flush_timeout_ms, t));
  }
  return w.exit_code;
}

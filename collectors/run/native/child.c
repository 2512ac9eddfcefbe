/*
 * One run of the watched command: spawned with stdin and stdout inherited and stderr through a pipe (the
 * loop passes every byte on to the wrapper's stderr and keeps the last lines, bounded), its process tree
 * sampled from /proc for memory and CPU.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wrapper.h"

/* USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every mainstream Linux architecture. */
#define CLOCK_TICKS_PER_S 100.0
#define TAIL_LINES 50
#define TAIL_BYTES 8192

void run_start(run_t *r, const char *command, char *const argv[], char *const envp[], const cgroup_t *cg) {
  memset(r, 0, sizeof *r);
  r->pid = -1;
  r->stderr_fd = -1;
  r->code = -1;
  r->max_rss = r->last_rss = -1;
  r->oom_before = cgroup_oom_kills(cg);
  r->started_wall = wall_ms();
  r->started_mono = mono_ms();

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    r->spawn_error = errno;
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
  posix_spawnattr_init(&attr);
  /* The command starts as from a shell: every signal at its default (the wrapper ignores SIGPIPE, and a
     Node parent that exec'd the wrapper left its own dispositions), nothing blocked. */
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int rc = posix_spawnp(&pid, command, &actions, &attr, argv, envp);
  if (rc == ENOEXEC) {
    /* A script without "#!": run by the shell, as execvp (and so Node's spawn) does. */
    size_t n = 0;
    while (argv[n]) n++;
    char **with_sh = calloc(n + 2, sizeof *with_sh);
    if (with_sh) {
      with_sh[0] = "sh";
      for (size_t i = 0; i < n; i++) with_sh[i + 1] = argv[i];
      with_sh[1] = (char *)command;
      rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, with_sh, envp);
      free(with_sh);
    }
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    r->spawn_error = rc;
    return;
  }
  r->pid = pid;
  r->alive = true;
  r->stderr_fd = pipefd[0];
  fcntl(r->stderr_fd, F_SETFL, fcntl(r->stderr_fd, F_GETFL) | O_NONBLOCK);
}

void run_tail_push(run_t *r, const char *p, size_t n) {
  if (n >= TAIL_KEEP) {
    memcpy(r->tail, p + n - TAIL_KEEP, TAIL_KEEP);
    r->tail_len = TAIL_KEEP;
    return;
  }
  if (r->tail_len + n > TAIL_KEEP) {
    size_t drop = r->tail_len + n - TAIL_KEEP;
    memmove(r->tail, r->tail + drop, r->tail_len - drop);
    r->tail_len -= drop;
  }
  memcpy(r->tail + r->tail_len, p, n);
  r->tail_len += n;
}

void run_tail_value(const run_t *r, buf_t *out) {
  const char *s = r->tail;
  size_t n = r->tail_len;
  if (n > 0 && s[n - 1] == '\n') n--;
  /* The start of the last TAIL_LINES lines. */
  size_t start = 0, lines = 0;
  for (size_t i = n; i > 0; i--)
    if (s[i - 1] == '\n' && ++lines == TAIL_LINES) {
      start = i;
      break;
    }
  if (n - start > TAIL_BYTES) start = n - TAIL_BYTES;
  /* A character cut at the start is left out whole. */
  while (start < n && ((unsigned char)s[start] & 0xc0) == 0x80) start++;
  utf8_clean(out, s + start, n - start);
}

bool run_sample(run_t *r, proc_sample_t *s) {
  if (!r->alive || !sample_tree(r->pid, s)) return false;
  r->last_rss = s->rss;
  int64_t peak = s->rss > s->hwm ? s->rss : s->hwm;
  if (peak > r->max_rss) r->max_rss = peak;
  return true;
}

bool run_vitals(run_t *r, vitals_t *v) {
  proc_sample_t s;
  if (!run_sample(r, &s)) return false;
  double at = mono_msf();
  v->rss = s.rss;
  v->max_rss = r->max_rss >= 0 ? r->max_rss : s.rss;
  v->cpu = -1;
  if (r->cpu_seen && at > r->cpu_at) {
    /* Ticks of a descendant that died unreaped leave the sum: never report a negative rate. */
    double seconds = (s.cpu_ticks > r->cpu_ticks ? (double)(s.cpu_ticks - r->cpu_ticks) : 0) / CLOCK_TICKS_PER_S;
    v->cpu = floor(seconds / ((at - r->cpu_at) / 1000.0) * 1000.0 + 0.5) / 1000.0;
  }
  r->cpu_seen = true;
  r->cpu_ticks = s.cpu_ticks;
  r->cpu_at = at;
  return true;
}

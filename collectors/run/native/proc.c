/*
 * What Linux says about the command, read from /proc: resident memory, its peak (VmHWM) and CPU time of the
 * process and the descendants it started (a `sh -c` and the program it runs are one target), and the memory
 * cgroup's limit and OOM-kill counter. Readers report "unknown" where a file is missing, never fail.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wrapper.h"

/* Bound on the process tree walked per sample (a fork bomb must not make sampling expensive). */
#define MAX_TREE 256

/* Reads a small file whole into buf (NUL-terminated); the length, or -1. */
static ssize_t slurp(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return -1;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = 0;
  return (ssize_t)len;
}

static int64_t status_kb(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (strncmp(line, name, n) == 0 && line[n] == ':') return strtoll(line + n + 1, NULL, 10) * 1024;
  return -1;
}

/* VmRSS and VmHWM in bytes; false for a zombie or a process that is gone. */
static bool memory_of(pid_t pid, int64_t *rss, int64_t *hwm) {
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  if (slurp(path, text, sizeof text) < 0) return false;
  *rss = status_kb(text, "VmRSS");
  if (*rss < 0) return false;
  *hwm = status_kb(text, "VmHWM");
  if (*hwm < 0) *hwm = *rss;
  return true;
}

/* utime + stime + cutime + cstime (fields 14..17 of /proc/<pid>/stat), in clock ticks. */
static bool cpu_ticks_of(pid_t pid, int64_t *ticks) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (slurp(path, text, sizeof text) < 0) return false;
  /* The command name (field 2) may hold spaces and parentheses: the fields after it start past the last ')'. */
  char *p = strrchr(text, ')');
  if (!p) return false;
  p += 2;
  int64_t sum = 0;
  for (int field = 3; field <= 17 && *p; field++) {
    char *end;
    long long v = strtoll(p, &end, 10);
    if (field >= 14) {
      if (end == p) return false;
      sum += v;
    }
    p = strchr(p, ' ');
    if (!p) return field == 17;
    p++;
  }
  *ticks = sum;
  return true;
}

/* Direct children of pid, from /proc/<pid>/task/<tid>/children, appended to list. */
static void children_of(pid_t pid, pid_t *list, size_t *n, size_t cap) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *dir = opendir(path);
  if (!dir) return;
  struct dirent *e;
  char text[4096];
  while ((e = readdir(dir)) && *n < cap) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char file[320];
    snprintf(file, sizeof file, "/proc/%d/task/%s/children", (int)pid, e->d_name);
    if (slurp(file, text, sizeof text) <= 0) continue;
    for (char *p = text; *p && *n < cap;) {
      char *end;
      long c = strtol(p, &end, 10);
      if (end == p) break;
      list[(*n)++] = (pid_t)c;
      p = end;
    }
  }
  closedir(dir);
}

bool sample_tree(pid_t pid, proc_sample_t *out) {
  int64_t rss, hwm, ticks;
  if (!memory_of(pid, &rss, &hwm) || !cpu_ticks_of(pid, &ticks)) return false;
  out->rss = rss;
  out->hwm = hwm;
  out->cpu_ticks = ticks;
  /* Breadth first: tree[0..seen) are visited, tree[seen..n) wait. */
  pid_t tree[MAX_TREE];
  size_t n = 0, next = 0;
  tree[n++] = pid;
  next = 1;
  children_of(pid, tree, &n, MAX_TREE);
  for (; next < n; next++) {
    pid_t p = tree[next];
    bool dup = false;
    for (size_t i = 0; i < next && !dup; i++) dup = tree[i] == p;
    if (dup) continue;
    int64_t r, h, t;
    if (memory_of(p, &r, &h)) out->rss += r;
    if (cpu_ticks_of(p, &t)) out->cpu_ticks += t;
    children_of(p, tree, &n, MAX_TREE);
  }
  return true;
}

/* Limits at or above this are "no limit" (cgroup v1 writes 2^63 rounded down to a page). */
#define UNLIMITED (1LL << 60)

static int64_t number_in(const char *path) {
  char text[64];
  if (slurp(path, text, sizeof text) <= 0) return -1;
  char *end;
  long long v = strtoll(text, &end, 10);
  if (end == text || text[0] == '-') return -1;
  while (*end == '\n' || *end == ' ') end++;
  return *end ? -1 : v;
}

/*
 * The memory cgroup of this process (v2, else v1), as the Node implementation finds it: every directory
 * from the process's cgroup up to the mount's root that has the limit file; inside a container the path may
 * not be visible, and then the mount's root is the cgroup.
 */
static bool cgroup_try(cgroup_t *c, const char *base, const char *rel, const char *limit_file, const char *events_file, int kind) {
  char dir[512];
  if (!rel || strstr(rel, "/..")) rel = "";
  snprintf(dir, sizeof dir, "%s%s%s", base, rel[0] && rel[0] != '/' ? "/" : "", rel);
  size_t blen = strlen(base);
  while (strlen(dir) > blen && dir[strlen(dir) - 1] == '/') dir[strlen(dir) - 1] = 0;
  bool found = false;
  int64_t lowest = -1;
  for (;;) {
    if (strncmp(dir, base, blen) != 0) break;
    char file[600];
    snprintf(file, sizeof file, "%s/%s", dir, limit_file);
    char probe[64];
    if (slurp(file, probe, sizeof probe) >= 0) {
      if (!found) snprintf(c->events, sizeof c->events, "%s/%s", dir, events_file);
      found = true;
      int64_t v = number_in(file);
      if (v >= 0 && v < UNLIMITED && (lowest < 0 || v < lowest)) lowest = v;
    }
    if (strlen(dir) <= blen) break;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) break;
    *slash = 0;
  }
  if (!found) return false;
  c->kind = kind;
  c->limit = lowest;
  return true;
}

void cgroup_find(cgroup_t *c) {
  c->kind = 0;
  c->limit = -1;
  c->events[0] = 0;
  char text[4096];
  if (slurp("/proc/self/cgroup", text, sizeof text) < 0) text[0] = 0;
  char *v2 = NULL, *v1 = NULL;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "0::", 3) == 0) v2 = line + 3;
    char *a = strchr(line, ':');
    char *b = a ? strchr(a + 1, ':') : NULL;
    if (!a || !b || v1) continue;
    /* controllers between the colons, comma-separated */
    for (char *ctl = a + 1; ctl < b;) {
      char *end = memchr(ctl, ',', (size_t)(b - ctl));
      if (!end) end = b;
      if (end - ctl == 6 && strncmp(ctl, "memory", 6) == 0) v1 = b + 1;
      ctl = end + 1;
    }
  }
  if (cgroup_try(c, "/sys/fs/cgroup", v2, "memory.max", "memory.events", 2)) return;
  cgroup_try(c, "/sys/fs/cgroup/memory", v1, "memory.limit_in_bytes", "memory.oom_control", 1);
}

int64_t cgroup_oom_kills(const cgroup_t *c) {
  if (!c->kind) return -1;
  char text[2048];
  if (slurp(c->events, text, sizeof text) < 0) return -1;
  for (char *line = text; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (strncmp(line, "oom_kill ", 9) == 0) return strtoll(line + 9, NULL, 10);
  return -1;
}

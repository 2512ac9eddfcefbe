/*
 * The command line of `faultline run`, with the same flags, defaults and usage errors as options.ts (which
 * the Node entry runs first, so a bad line gets the very same message either way), and the identity the
 * wrapper reports: OTLP resource, the command's environment, request headers.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wrapper.h"

static void usage_error(const char *fmt, const char *a, const char *b) {
  buf_t b1 = {0};
  buf_fmt(&b1, fmt, a ? a : "", b ? b : "");
  say("%s\nRun \"faultline run --help\" for usage.", b1.p);
  exit(2);
}

static int64_t duration(const char *text, const char *flag) {
  while (isspace((unsigned char)*text)) text++;
  char *end;
  if (!isdigit((unsigned char)*text)) usage_error("%s: \"%s\" is not a duration (e.g. 500ms, 2s, 1m)", flag, text);
  double v = strtod(text, &end);
  /* digits, optionally "." and digits: no exponent, no hex */
  const char *p = text;
  while (isdigit((unsigned char)*p)) p++;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p)) usage_error("%s: \"%s\" is not a duration (e.g. 500ms, 2s, 1m)", flag, text);
    while (isdigit((unsigned char)*p)) p++;
  }
  end = (char *)p;
  double unit = 1000;
  if (strncmp(end, "ms", 2) == 0) unit = 1, end += 2;
  else if (*end == 's') end++;
  else if (*end == 'm') unit = 60000, end++;
  else if (*end == 'h') unit = 3600000, end++;
  while (isspace((unsigned char)*end)) end++;
  if (*end) usage_error("%s: \"%s\" is not a duration (e.g. 500ms, 2s, 1m)", flag, text);
  return (int64_t)floor(v * unit + 0.5);
}

static int64_t whole(const char *text, const char *flag, int64_t min) {
  if (!*text || strspn(text, "0123456789") != strlen(text) || strlen(text) > 15 || strtoll(text, NULL, 10) < min) {
    char m[32];
    snprintf(m, sizeof m, "%lld", (long long)min);
    buf_t msg = {0};
    buf_fmt(&msg, "%s: \"%s\" is not a whole number%s%s", flag, text, min > 0 ? " ≥ " : "", min > 0 ? m : "");
    say("%s\nRun \"faultline run --help\" for usage.", msg.p);
    exit(2);
  }
  return strtoll(text, NULL, 10);
}

static const char *http_url(const char *flag, const char *text) {
  url_t u;
  int kind = url_parse(text, &u);
  if (kind < 0) usage_error("%s: \"%s\" is not an http(s) URL", flag, text);
  if (kind == 1) usage_error("%s: \"%s\": https is spoken by the Node implementation only (FAULTLINE_RUN_NATIVE=0)", flag, text);
  char *copy = strdup(text);
  for (size_t n = strlen(copy); n > 0 && copy[n - 1] == '/'; n--) copy[n - 1] = 0;
  return copy;
}

static const char *const STRING_FLAGS[] = {"service", "instance", "service-version", "otlp-endpoint", "url", "check", "token", "restart",
                                           "restart-delay", "restart-max-delay", "max-restarts", "interval", "buffer", "flush-timeout", NULL};

void parse_options(int argc, char **argv, options_t *o) {
  memset(o, 0, sizeof *o);
  int dashes = -1;
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "--") == 0) {
      dashes = i;
      break;
    }
  const char *hint = dashes < 0 ? " (put the command after \"--\": faultline run [options] -- command args…)" : "";
  const char *values[sizeof STRING_FLAGS / sizeof *STRING_FLAGS] = {0};
  char **positionals = calloc((size_t)argc + 1, sizeof *positionals);
  int npos = 0;
  int nflags = dashes >= 0 ? dashes : argc;
  for (int i = 0; i < nflags; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == 0) {
      positionals[npos++] = argv[i];
      continue;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      o->help = true;
      continue;
    }
    char name[64];
    const char *inline_value = NULL;
    if (a[1] == '-') {
      const char *eq = strchr(a + 2, '=');
      size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
      if (n >= sizeof name) n = sizeof name - 1;
      memcpy(name, a + 2, n);
      name[n] = 0;
      if (eq) inline_value = eq + 1;
    } else if ((a[1] == 's' || a[1] == 'i') && 1) {
      snprintf(name, sizeof name, "%s", a[1] == 's' ? "service" : "instance");
      if (a[2]) inline_value = a + 2;
    } else
      usage_error("unknown option \"%s\"%s", a, hint);
    int k = 0;
    while (STRING_FLAGS[k] && strcmp(STRING_FLAGS[k], name) != 0) k++;
    if (!STRING_FLAGS[k]) usage_error("unknown option \"%s\"%s", a, hint);
    if (!inline_value) {
      if (i + 1 >= nflags) usage_error("option \"%s\" needs a value%s", a, hint);
      inline_value = argv[++i];
    }
    values[k] = inline_value;
  }
  if (o->help) return;
  if (dashes >= 0 && npos > 0) usage_error("unexpected \"%s\" before \"--\" (options go before \"--\", the command after it)", positionals[0], NULL);
  if (dashes >= 0) {
    o->command = argv + dashes + 1;
    o->ncommand = argc - dashes - 1;
  } else {
    o->command = positionals;
    o->ncommand = npos;
  }
  if (o->ncommand == 0 || !o->command[0][0]) usage_error("no command to run: faultline run [options] -- command args…", NULL, NULL);

  int i = 0;
  o->service = values[i++];
  o->instance = values[i++];
  o->service_version = values[i++];
  const char *otlp = values[i++], *url = values[i++];
  o->check = values[i++];
  o->token = values[i++];
  const char *restart = values[i++], *restart_delay = values[i++], *restart_max_delay = values[i++], *max_restarts = values[i++];
  const char *interval = values[i++], *buffer = values[i++], *flush_timeout = values[i++];

  if (!restart || strcmp(restart, "no") == 0) o->restart = RESTART_NO;
  else if (strcmp(restart, "on-failure") == 0) o->restart = RESTART_ON_FAILURE;
  else if (strcmp(restart, "always") == 0) o->restart = RESTART_ALWAYS;
  else usage_error("--restart: \"%s\" is not one of no, on-failure, always", restart, NULL);
  if (o->check) {
    size_t n = strlen(o->check);
    bool ok = n >= 1 && n <= 128 && (islower((unsigned char)o->check[0]) || isdigit((unsigned char)o->check[0]));
    for (size_t j = 0; ok && j < n; j++) ok = islower((unsigned char)o->check[j]) || isdigit((unsigned char)o->check[j]) || strchr("_.-", o->check[j]);
    if (!ok) usage_error("--check: \"%s\" is not a check slug (lower-case letters, digits, \"-\", \"_\", \".\")", o->check, NULL);
  }
  if (!o->token) {
    const char *t = getenv("FAULTLINE_TOKEN");
    o->token = t && *t ? t : NULL;
  }
  if (o->token) {
    bool ok = *o->token != 0;
    for (const char *p = o->token; ok && *p; p++) ok = *p >= 0x21 && *p <= 0x7e;
    if (!ok) usage_error("--token must be printable characters without spaces", NULL, NULL);
  }
  if (o->service && !*o->service) usage_error("--service must not be empty", NULL, NULL);
  if (o->instance && !*o->instance) usage_error("--instance must not be empty", NULL, NULL);
  o->interval_ms = duration(interval ? interval : "1s", "--interval");
  if (o->interval_ms < 10) usage_error("--interval: at least 10ms", NULL, NULL);
  o->restart_delay_ms = duration(restart_delay ? restart_delay : "1s", "--restart-delay");
  int64_t max_delay = duration(restart_max_delay ? restart_max_delay : "1m", "--restart-max-delay");
  o->restart_max_delay_ms = max_delay > o->restart_delay_ms ? max_delay : o->restart_delay_ms;
  const char *env_otlp = getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), *env_url = getenv("FAULTLINE_URL");
  o->otlp_endpoint = http_url("--otlp-endpoint", otlp ? otlp : env_otlp ? env_otlp : "http://127.0.0.1:4318");
  o->url = http_url("--url", url ? url : env_url ? env_url : "http://127.0.0.1:8080");
  o->max_restarts = max_restarts ? whole(max_restarts, "--max-restarts", 0) : -1;
  o->buffer = (size_t)whole(buffer ? buffer : "1000", "--buffer", 1);
  o->flush_timeout_ms = duration(flush_timeout ? flush_timeout : "2s", "--flush-timeout");
}

/*
 * Who the command is, in faultline's telemetry conventions (as report.ts says it): the OTLP resource, the
 * environment that gives an OpenTelemetry SDK inside the command the same identity, and the headers of the
 * wrapper's own requests.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wrapper.h"

extern char **environ;

static void kv_set(kv_t *kv, const char *key, const char *value) {
  for (size_t i = 0; i < kv->n; i++)
    if (strcmp(kv->keys[i], key) == 0) {
      free(kv->values[i]);
      kv->values[i] = strdup(value);
      return;
    }
  kv->keys = realloc(kv->keys, (kv->n + 1) * sizeof *kv->keys);
  kv->values = realloc(kv->values, (kv->n + 1) * sizeof *kv->values);
  kv->keys[kv->n] = strdup(key);
  kv->values[kv->n] = strdup(value);
  kv->n++;
}

const char *kv_get(const kv_t *kv, const char *key) {
  for (size_t i = 0; i < kv->n; i++)
    if (strcmp(kv->keys[i], key) == 0) return kv->values[i];
  return NULL;
}

static void kv_delete(kv_t *kv, const char *key) {
  for (size_t i = 0; i < kv->n; i++)
    if (strcmp(kv->keys[i], key) == 0) {
      free(kv->keys[i]);
      free(kv->values[i]);
      memmove(&kv->keys[i], &kv->keys[i + 1], (kv->n - i - 1) * sizeof *kv->keys);
      memmove(&kv->values[i], &kv->values[i + 1], (kv->n - i - 1) * sizeof *kv->values);
      kv->n--;
      return;
    }
}

static int hex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* decodeURIComponent of s[0..n) with the ends trimmed; false where JavaScript would throw. */
static bool uri_decode(const char *s, size_t n, buf_t *out) {
  while (n > 0 && isspace((unsigned char)*s)) s++, n--;
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  out->len = 0;
  buf_add(out, "", 0);
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      buf_add(out, &s[i], 1);
      continue;
    }
    if (i + 2 >= n) return false;
    int h = hex((unsigned char)s[i + 1]), l = hex((unsigned char)s[i + 2]);
    if (h < 0 || l < 0) return false;
    char c = (char)(h * 16 + l);
    buf_add(out, &c, 1);
    i += 2;
  }
  /* Decoded bytes must be UTF-8, as URIError says otherwise. */
  buf_t check = {0};
  utf8_clean(&check, out->p, out->len);
  bool ok = check.len == out->len && memcmp(check.p, out->p, out->len) == 0;
  buf_free(&check);
  return ok;
}

void parse_pairs(const char *text, kv_t *kv) {
  if (!text) return;
  buf_t key = {0}, value = {0};
  for (const char *pair = text;;) {
    const char *end = strchr(pair, ',');
    size_t n = end ? (size_t)(end - pair) : strlen(pair);
    const char *eq = memchr(pair, '=', n);
    if (eq && eq > pair && uri_decode(pair, (size_t)(eq - pair), &key) && uri_decode(eq + 1, n - (size_t)(eq - pair) - 1, &value))
      kv_set(kv, key.p, value.p);
    if (!end) break;
    pair = end + 1;
  }
  buf_free(&key);
  buf_free(&value);
}

static void uri_encode(buf_t *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (isalnum(*p) || strchr("-_.!~*'()", *p)) buf_add(b, p, 1);
    else buf_fmt(b, "%%%02X", *p);
}

void identity_make(identity_t *id, const options_t *o, pid_t wrapper_pid) {
  memset(id, 0, sizeof *id);
  parse_pairs(getenv("OTEL_RESOURCE_ATTRIBUTES"), &id->attrs);
  static char host[256];
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = 0;
  const char *h = kv_get(&id->attrs, "host.name");
  id->host = h && *h ? h : host;
  const char *env_service = getenv("OTEL_SERVICE_NAME"), *attr_service = kv_get(&id->attrs, "service.name");
  const char *base = strrchr(o->command[0], '/');
  const char *command_name = base && base[1] ? base + 1 : o->command[0];
  id->service = o->service ? o->service : env_service && *env_service ? env_service : attr_service && *attr_service ? attr_service : command_name;
  const char *attr_instance = kv_get(&id->attrs, "service.instance.id");
  if (o->instance) id->instance = o->instance;
  else if (attr_instance && *attr_instance) id->instance = attr_instance;
  else {
    buf_t b = {0};
    buf_fmt(&b, "%s/%d", id->host, (int)wrapper_pid);
    id->instance = b.p;
  }
  const char *attr_version = kv_get(&id->attrs, "service.version");
  id->version = o->service_version ? o->service_version : attr_version ? attr_version : "";
}

/* The resource's attributes before process.pid and after it (see sender_t). */
void identity_resource(const identity_t *id, const options_t *o, char **fixed, char **tail) {
  static const char *const own[] = {"service.name", "service.instance.id", "service.version", "host.name", "process.pid",
                                    "process.parent_pid", "process.command", "process.command_line", NULL};
  attrs_t a = {0};
  for (size_t i = 0; i < id->attrs.n; i++) {
    bool skip = false;
    for (int k = 0; own[k] && !skip; k++) skip = strcmp(own[k], id->attrs.keys[i]) == 0;
    if (!skip) attr_str(&a, id->attrs.keys[i], id->attrs.values[i]);
  }
  attr_str(&a, "service.name", id->service);
  attr_str(&a, "service.instance.id", id->instance);
  if (*id->version) attr_str(&a, "service.version", id->version);
  attr_str(&a, "host.name", id->host);
  *fixed = a.b.p;
  attrs_t t = {.any = true};
  attr_int(&t, "process.parent_pid", getpid());
  attr_str(&t, "process.command", o->command[0]);
  buf_t line = {0};
  for (int i = 0; i < o->ncommand; i++) {
    if (i) buf_add(&line, " ", 1);
    buf_str(&line, o->command[i]);
  }
  attr_str(&t, "process.command_line", line.p);
  buf_free(&line);
  *tail = t.b.p;
}

char **identity_child_env(const identity_t *id, const options_t *o) {
  kv_t attrs = {0};
  parse_pairs(getenv("OTEL_RESOURCE_ATTRIBUTES"), &attrs);
  kv_set(&attrs, "service.instance.id", id->instance);
  kv_set(&attrs, "host.name", id->host);
  if (*id->version) kv_set(&attrs, "service.version", id->version);
  kv_delete(&attrs, "service.name");
  buf_t encoded = {0};
  buf_str(&encoded, "OTEL_RESOURCE_ATTRIBUTES=");
  for (size_t i = 0; i < attrs.n; i++) {
    if (i) buf_add(&encoded, ",", 1);
    uri_encode(&encoded, attrs.keys[i]);
    buf_add(&encoded, "=", 1);
    uri_encode(&encoded, attrs.values[i]);
  }
  buf_t service = {0}, endpoint = {0}, token = {0}, headers = {0};
  buf_fmt(&service, "OTEL_SERVICE_NAME=%s", id->service);
  buf_fmt(&endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT=%s", o->otlp_endpoint);
  const char *own[8] = {"FAULTLINE_SUPERVISED=1", service.p, encoded.p, endpoint.p, NULL, NULL, NULL, NULL};
  int nown = 4;
  if (o->token) {
    const char *t = getenv("FAULTLINE_TOKEN"), *h = getenv("OTEL_EXPORTER_OTLP_HEADERS");
    buf_fmt(&token, "FAULTLINE_TOKEN=%s", t ? t : o->token);
    buf_str(&headers, "OTEL_EXPORTER_OTLP_HEADERS=");
    if (h) buf_str(&headers, h);
    else {
      buf_str(&headers, "authorization=Bearer%20");
      uri_encode(&headers, o->token);
    }
    own[nown++] = token.p;
    own[nown++] = headers.p;
  }
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + (size_t)nown + 1, sizeof *env);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    bool replaced = false;
    for (int j = 0; j < nown && !replaced; j++) {
      size_t name = strcspn(own[j], "=");
      replaced = strncmp(environ[i], own[j], name + 1) == 0;
    }
    if (!replaced) env[k++] = environ[i];
  }
  for (int j = 0; j < nown; j++) env[k++] = (char *)own[j];
  env[k] = NULL;
  return env;
}

/* OTEL_EXPORTER_OTLP_HEADERS (names lower-cased) with the token, when there is one, as the authorization. */
void identity_headers(const options_t *o, char **otlp, char **ping) {
  kv_t h = {0};
  parse_pairs(getenv("OTEL_EXPORTER_OTLP_HEADERS"), &h);
  kv_t lower = {0};
  for (size_t i = 0; i < h.n; i++) {
    for (char *p = h.keys[i]; *p; p++) *p = (char)tolower((unsigned char)*p);
    kv_set(&lower, h.keys[i], h.values[i]);
  }
  if (o->token) {
    buf_t auth = {0};
    buf_fmt(&auth, "Bearer %s", o->token);
    kv_set(&lower, "authorization", auth.p);
    buf_free(&auth);
  }
  buf_t a = {0}, b = {0};
  buf_add(&a, "", 0);
  buf_add(&b, "", 0);
  for (size_t i = 0; i < lower.n; i++) {
    const char *k = lower.keys[i], *v = lower.values[i];
    /* A header that would break the request's framing is left out. */
    if (strpbrk(k, "\r\n: ") || strpbrk(v, "\r\n") || !*k) continue;
    if (strcmp(k, "content-type") == 0 || strcmp(k, "content-length") == 0 || strcmp(k, "host") == 0 || strcmp(k, "connection") == 0) continue;
    buf_fmt(&a, "%s: %s\r\n", k, v);
    if (strcmp(k, "authorization") == 0) buf_fmt(&b, "%s: %s\r\n", k, v);
  }
  buf_str(&a, "content-type: application/json\r\n");
  buf_str(&b, "content-type: text/plain; charset=utf-8\r\n");
  *otlp = a.p;
  *ping = b.p;
}

/*
 * A Node-API addon with one function, exec(file, argv): replaces the calling Node process with another
 * program (execv), so `faultline run` leaves no Node process resident beside the command it watches. Node 20
 * has no process.execve (Node 22.15 and 23.11 do). The few Node-API declarations needed are written out here
 * (they are a stable C ABI), so building needs a C compiler and libc only, not Node's headers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok is 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_get_cb_info(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *this_arg, void **data);
extern napi_status napi_get_value_string_utf8(napi_env env, napi_value value, char *buf, size_t bufsize, size_t *result);
extern napi_status napi_get_array_length(napi_env env, napi_value value, uint32_t *result);
extern napi_status napi_get_element(napi_env env, napi_value object, uint32_t index, napi_value *result);
extern napi_status napi_create_function(napi_env env, const char *name, size_t length, napi_callback cb, void *data, napi_value *result);
extern napi_status napi_throw_error(napi_env env, const char *code, const char *msg);

/* A JavaScript string as a new C string, or NULL. */
static char *string_of(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != 0) return NULL;
  char *s = malloc(len + 1);
  if (s && napi_get_value_string_utf8(env, v, s, len + 1, &len) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

static napi_value exec_file(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  uint32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != 0 || argc < 2 || napi_get_array_length(env, args[1], &n) != 0) {
    napi_throw_error(env, "EINVAL", "exec(file, argv): a file and an array of strings");
    return NULL;
  }
  char *file = string_of(env, args[0]);
  char **argv = calloc((size_t)n + 1, sizeof *argv);
  for (uint32_t i = 0; file && argv && i < n; i++) {
    napi_value element;
    if (napi_get_element(env, args[1], i, &element) != 0 || !(argv[i] = string_of(env, element))) {
      napi_throw_error(env, "EINVAL", "exec(file, argv): argv must be strings");
      return NULL;
    }
  }
  if (!file || !argv) {
    napi_throw_error(env, "EINVAL", "exec(file, argv): a file and an array of strings");
    return NULL;
  }
  /* Node marks its stdio close-on-exec at start: the program must get stdin, stdout and stderr. */
  int flags[3];
  for (int fd = 0; fd < 3; fd++)
    if ((flags[fd] = fcntl(fd, F_GETFD)) >= 0) fcntl(fd, F_SETFD, flags[fd] & ~FD_CLOEXEC);
  execv(file, argv);
  /* Still here: the exec failed, and this process goes on as it was. */
  int err = errno;
  for (int fd = 0; fd < 3; fd++)
    if (flags[fd] >= 0) fcntl(fd, F_SETFD, flags[fd]);
  for (uint32_t i = 0; i < n; i++) free(argv[i]);
  free(argv);
  free(file);
  napi_throw_error(env, err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : "EEXEC", strerror(err));
  return NULL;
}

/* Node-API's module entry point: the module's exports are the function itself. */
__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  (void)exports;
  napi_value fn;
  if (napi_create_function(env, "exec", 4, exec_file, NULL, &fn) != 0) return NULL;
  return fn;
}

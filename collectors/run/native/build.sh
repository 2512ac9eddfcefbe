#!/bin/sh
# Builds the native `faultline run` (dist/native/faultline-run) and the addon through which the Node CLI
# replaces itself with it (dist/native/exec.node), with the system's C compiler (C11, libc only). Without a
# compiler, or when the build fails, it says so and succeeds: faultline run then uses its Node implementation.
# Run by `npm run build` and on install; CC picks the compiler (default cc).
set -u
cd "$(dirname "$0")/../../.." || exit 0
CC="${CC:-cc}"
src=collectors/run/native
out=dist/native
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "faultline: no C compiler ($CC): faultline run will use its Node implementation" >&2
  exit 0
fi
version=$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' package.json | head -n 1)
mkdir -p "$out"
# Built under temporary names and moved into place: a wrapper starting meanwhile finds the old file or the new one.
if "$CC" -std=c11 -O2 -Wall -DFAULTLINE_VERSION="\"$version\"" -o "$out/faultline-run.$$" \
    "$src/child.c" "$src/http.c" "$src/identity.c" "$src/main.c" "$src/options.c" "$src/proc.c" "$src/telemetry.c" "$src/util.c" -lm \
  && "$CC" -std=c11 -O2 -Wall -shared -fPIC -o "$out/exec.node.$$" "$src/exec/exec.c"; then
  mv -f "$out/faultline-run.$$" "$out/faultline-run"
  mv -f "$out/exec.node.$$" "$out/exec.node"
else
  rm -f "$out/faultline-run.$$" "$out/exec.node.$$"
  echo "faultline: building the native faultline run failed: it will use its Node implementation" >&2
fi
exit 0

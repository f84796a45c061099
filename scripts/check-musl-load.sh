#!/usr/bin/env bash
# Loads the x64 musl build (npm/linux-x64-musl/rust-net.linux-x64-musl.node)
# with musl's own dynamic linker, as Node on Alpine would: every libc symbol
# it imports must resolve in musl, its constructors must run, and it must
# export the N-API entry point. No musl build of Node can be had here (the
# registries carry none that runs on this machine's musl 1.2.3), so the N-API
# functions Node would provide are stubs: this checks linking and loading,
# not behaviour. Needs musl-gcc (Debian: musl-tools; scripts/setup-cross.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
addon=${1:-npm/linux-x64-musl/rust-net.linux-x64-musl.node}
[[ -f "$addon" ]] || { echo "check-musl-load: $addon is missing (npm run build:all)" >&2; exit 1; }
command -v musl-gcc >/dev/null || { echo "check-musl-load: musl-gcc is missing (apt-get install musl-tools)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Every napi_*/node_api_* function the addon imports, and the libuv ones
# Node exports to addons (the event-loop placement's poll handle), failing
# if ever called.
readelf --dyn-syms -W "$addon" | awk '$7 == "UND" && $8 != "" { sub(/@.*/, "", $8); print $8 }' |
  grep -E '^(napi_|node_api_|uv_)' | sort -u | sed 's/.*/int &(void) { return 9; }/' > "$work/stub.c"
cat > "$work/load.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { printf("dlopen failed: %s\n", dlerror()); return 1; }
  if (!dlsym(h, "napi_register_module_v1")) { printf("no napi_register_module_v1\n"); return 1; }
  printf("loaded by musl's dynamic linker; exports napi_register_module_v1\n");
  return 0;
}
EOF
musl-gcc -O1 -rdynamic -o "$work/load" "$work/load.c" "$work/stub.c"
needed=$(readelf -d -W "$addon" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "check-musl-load: $addon needs: $needed($(wc -l < "$work/stub.c") N-API and libuv imports stubbed)"
"$work/load" "$(realpath "$addon")"

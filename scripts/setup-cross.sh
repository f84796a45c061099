#!/usr/bin/env bash
# Installs what `npm run build:all` and `npm run test:arm64` need on a Debian
# machine, as root (CI runs it; a developer may too). Idempotent: what is
# already there is left alone.
#
# - zig and cargo-zigbuild (PyPI): one cross linker for every Linux target;
# - the Rust standard library of each target in package.json's napi.targets,
#   and the two macOS ones for `npm run check:macos`;
# - qemu-user with binfmt_misc and the arm64 glibc (Debian), so the official
#   arm64 Node binary runs here, with its child processes (node --test runs
#   each test file in one). Set QEMU_LD_PREFIX=/usr/aarch64-linux-gnu to run
#   it; scripts/test-arm64.js does.
set -euo pipefail

packages=(binutils musl-tools qemu-user-static binfmt-support libc6-arm64-cross libstdc++6-arm64-cross)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-cross: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! cargo-zigbuild --version >/dev/null 2>&1; then
  echo "setup-cross: pip install cargo-zigbuild ziglang"
  python3 -m pip install --quiet --root-user-action=ignore cargo-zigbuild ziglang
fi

rustup target add --toolchain "$(rustup show active-toolchain | cut -d' ' -f1)" \
  x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu \
  x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
  aarch64-apple-darwin x86_64-apple-darwin 2>&1 | grep -v 'is up to date' || true

# binfmt_misc: the kernel runs aarch64 ELF files through qemu-aarch64.
if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
  mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 2>/dev/null || true
if ! head -1 /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null | grep -q enabled; then
  echo "setup-cross: binfmt_misc has no enabled qemu-aarch64 entry" >&2
  exit 1
fi
echo "setup-cross: ready (zig $(python3 -m ziglang version), $(cargo-zigbuild --version), qemu-aarch64 via binfmt_misc)"

#!/usr/bin/env bash
# make demo: fetch slurm 2.5.0 from the embedded fake GitHub, sign, verify
# (with ccmirror and with plain OpenSSH + coreutils), install into a scratch
# root, and show the result. Everything lives in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
work=$PWD/out/demo
rm -rf "$work"; mkdir -p "$work"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "start the fake GitHub (loopback, real API shapes, 302s to a download host)"
"$bin/fakegithub" -scan-world -ready-file "$work/github-url" >"$work/fakegithub.log" 2>&1 &
gh=$!
trap 'kill $gh 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/github-url" ] && break; sleep 0.1; done
url=$(cat "$work/github-url")
echo "GitHub API at $url"

step "make a signing key and an allowed_signers file"
ssh-keygen -q -t ed25519 -N '' -C demo@ccmirror -f "$work/signing_key"
printf 'demo@ccmirror namespaces="ccmirror" %s\n' "$(cut -d' ' -f1,2 "$work/signing_key.pub")" >"$work/allowed_signers"
cat "$work/allowed_signers"

step "connected side: ccmirror fetch slurm@2.5.0"
"$bin/ccmirror" fetch --github-url "$url" --sign-key "$work/signing_key" \
  --cache "$work/cache" -o "$work/slurm-2.5.0.tar" slurm@2.5.0
ls -l "$work/slurm-2.5.0.tar"

step "a second fetch is served from the cache"
"$bin/ccmirror" fetch --github-url "$url" --sign-key "$work/signing_key" \
  --cache "$work/cache" -o "$work/slurm-2.5.0-again.tar" slurm@2.5.0

step "slurm 4 needs healthagent and monitoring too: fetch --with-deps, and what the nodes will still reach at boot"
"$bin/ccmirror" fetch --github-url "$url" --sign-key "$work/signing_key" \
  --cache "$work/cache" --with-deps -o "$work/slurm-4.0.9.tar" slurm@4.0.9
"$bin/ccmirror" scan --allowed-signers "$work/allowed_signers" "$work/slurm-4.0.9.tar" | tail -1

step "ccmirror verify"
"$bin/ccmirror" verify --allowed-signers "$work/allowed_signers" "$work/slurm-2.5.0.tar"

step "the same check with only OpenSSH and coreutils"
mkdir -p "$work/x" && tar -xf "$work/slurm-2.5.0.tar" -C "$work/x"
(cd "$work/x" && ssh-keygen -Y verify -f "$work/allowed_signers" -I demo@ccmirror -n ccmirror -s SHA256SUMS.sig <SHA256SUMS \
  && sha256sum -c --quiet SHA256SUMS && echo "sha256sum -c: all $(wc -l <SHA256SUMS) files OK")

step "ccmirror inspect"
"$bin/ccmirror" inspect "$work/slurm-2.5.0.tar" >"$work/inspect.txt"
head -12 "$work/inspect.txt"; echo "    … ($(wc -l <"$work/inspect.txt") lines in all; --json for scripts)"

step "disconnected side: ccmirror install into a scratch root"
owner="$(id -un):$(id -gn)"
mkdir -p "$work/root"   # a scratch CycleCloud root (install never creates the root itself)
"$bin/ccmirror" install --allowed-signers "$work/allowed_signers" --root "$work/root" --owner "$owner" "$work/slurm-2.5.0.tar"

step "installing again is a no-op"
"$bin/ccmirror" install --allowed-signers "$work/allowed_signers" --root "$work/root" --owner "$owner" "$work/slurm-2.5.0.tar"

step "a bundle changed in transit is refused (exit 4) and nothing is written"
cp "$work/slurm-2.5.0.tar" "$work/tampered.tar"
size=$(stat -c %s "$work/tampered.tar")
printf 'X' | dd of="$work/tampered.tar" bs=1 seek=$((size - 4000)) conv=notrunc status=none
mkdir -p "$work/root2"
set +e
"$bin/ccmirror" install --allowed-signers "$work/allowed_signers" --root "$work/root2" --owner "$owner" "$work/tampered.tar" 2>&1 | grep -v level=INFO
echo "exit code ${PIPESTATUS[0]}; files under root2/work/staging: $(find "$work/root2/work/staging" -type f 2>/dev/null | wc -l)"
set -e

step "ccmirror status"
"$bin/ccmirror" status --root "$work/root"

step "what CycleCloud sees"
staging="$work/root/work/staging/projects"
(cd "$staging" && find . -maxdepth 3 | sort >"$work/staged.txt"); head -15 "$work/staged.txt"
echo "... $(find "$staging/slurm/blobs" -type f | wc -l) blobs in slurm/blobs"
stat -c '%A %U:%G %n' "$staging/slurm/2.5.0/project.ini"
find "$staging/slurm/2.5.0" -name '*.sh' -exec stat -c '%A %U:%G %n' {} + >"$work/scripts.txt"; head -3 "$work/scripts.txt"

step "done: all of it is under out/demo/"

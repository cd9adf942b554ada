#!/usr/bin/env bash
# Runs every fuzz target in the module for a short time each.
set -euo pipefail
t=${1:-10s}
# Minimising each new interesting input may take up to 60 s by default,
# during which the target makes no progress (FuzzReader showed 57 execs in
# 16 s that way); a bounded minimisation keeps the time for fuzzing.
min=${FUZZMINIMIZE:-20x}
cd "$(dirname "$0")/.."
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $f ($t)"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime "$min" "$pkg"
  done
done

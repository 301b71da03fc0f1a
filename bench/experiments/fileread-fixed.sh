#!/bin/sh
# Interleaved rounds of bench/experiments/fileread-fixed.c's four variants, pinned to CPU 0, the file
# read into the page cache before each; then the medians of ops/s and ops per CPU second, with the load
# average. Usage: bench/experiments/fileread-fixed.sh [rounds=7] [secs=2] [file=/tmp/ringio-fileread.bin]
# (the file: 256 MiB, as bench/fileread.mjs makes it).
set -e
rounds=${1:-7}; secs=${2:-2}; file=${3:-/tmp/ringio-fileread.bin}
here=$(dirname "$0")
bin=/tmp/ringio-fileread-fixed
cc -O2 -o "$bin" "$here/fileread-fixed.c" -luring
out=$(mktemp)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
r=0
while [ $r -lt "$rounds" ]; do
  for v in plain fixed file both; do
    cat "$file" > /dev/null
    taskset -c 0 "$bin" "$file" 64 "$secs" "$v" | tee -a "$out" >&2
  done
  r=$((r + 1))
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const by = (v, k) => med(rows.filter((r) => r.variant === v).map((r) => r[k]));
for (const v of ["plain", "fixed", "file", "both"]) {
  console.log(JSON.stringify({ variant: v, ops_per_s: Math.round(by(v, "ops_per_s")), ops_per_cpu_s: Math.round(by(v, "ops_per_cpu_s")),
    ratio_wall: +(by(v, "ops_per_s") / by("plain", "ops_per_s")).toFixed(3), ratio_cpu: +(by(v, "ops_per_cpu_s") / by("plain", "ops_per_cpu_s")).toFixed(3) }));
}' "$out"
rm -f "$out"

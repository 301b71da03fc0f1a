#!/usr/bin/env python3
"""Interleaved A/B runs of commands that print one JSON line ending in {"ops_per_s": ...}.

Usage: bench/experiments/interleave.py ROUNDS SECS name=cmd ...

Each round runs every command once, pinned to CPU 0, after reading /tmp/ringio-fileread.bin into the page
cache. Per case it prints the median wall rate (the command's own ops_per_s) and the median rate per
CPU second (ops_per_s * SECS over the child's user+sys time from getrusage), each with its ratio to the
last case. On a shared machine the second is what a dedicated CPU would do. Example (QD 64, against the
C reference; the old tree is a worktree of an earlier commit):

  bench/experiments/interleave.py 11 3 \\
    before="node ../old/bench/fileread.mjs --child ringio_uring rand 64 --secs 3 --file /tmp/ringio-fileread.bin" \\
    now="node bench/fileread.mjs --child ringio_uring rand 64 --secs 3 --file /tmp/ringio-fileread.bin" \\
    c="/tmp/ringio-bench-tools/fileread_uring /tmp/ringio-fileread.bin 64 3"
"""
import json
import resource
import shlex
import statistics
import subprocess
import sys

rounds = int(sys.argv[1])
secs = float(sys.argv[2])
cases = [a.split('=', 1) for a in sys.argv[3:]]
wall = {n: [] for n, _ in cases}
cpu = {n: [] for n, _ in cases}
for _ in range(rounds):
    for name, cmd in cases:
        subprocess.run(['cat', '/tmp/ringio-fileread.bin'], stdout=subprocess.DEVNULL)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(['taskset', '-c', '0'] + shlex.split(cmd), capture_output=True, text=True, check=True).stdout
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rate = json.loads(out.strip().split('\n')[-1])['ops_per_s']
        used = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        wall[name].append(rate)
        cpu[name].append(rate * secs / used)
bw = statistics.median(wall[cases[-1][0]])
bc = statistics.median(cpu[cases[-1][0]])
for name, _ in cases:
    w = statistics.median(wall[name])
    c = statistics.median(cpu[name])
    print(f'{name:>12}  wall {w:9.0f} ({w / bw:.3f})  per-cpu-s {c:9.0f} ({c / bc:.3f})'
          f'  wall {[round(x / 1000) for x in wall[name]]}  cpu {[round(x / 1000) for x in cpu[name]]}')

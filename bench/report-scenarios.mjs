// The scenarios of `npm run bench:report` (bench/report.mjs), one entry each. To add one (http-native,
// proxy-tcp, proxy-http, …), write a bench script that prints one JSON object per measured case on its
// last stdout lines (bench/lib.mjs's emit()), and add an entry here:
//
//   id        the key in docs/charts/report.json, and the prefix of its chart files
//   title     the heading of its part of docs/benchmarks.md
//   script    the bench script, relative to the repository root
//   args      { quick: [...], full: [...] }: its arguments in each mode
//   requires  optional: [{ cmd, hint }] commands that must be on PATH; if one is missing, the scenario
//             is skipped and the report says which and how to install it
//   about     optional: one paragraph under the heading (what is measured, what the anchor is)
//   notes     optional: (rows) => strings added under the table (e.g. a column that could not be measured)
//   prepare   optional: (row) => row, to derive fields for the table and charts
//   columns   optional: [{ field, title, fmt }] (fmt: 'int' | 'ratio' | 'fixed1' | 'fixed2' | 'text');
//             default: every field of the rows
//   charts    optional: [{ file, title, kind: 'line' | 'bar', x: { field, title, log }, y: { field,
//             title }, series, filter }], rendered to docs/charts/<file> with vega-lite
//
// Series names in charts and tables come from LABELS when known.

export const LABELS = {
  ringio_uring: 'ringio (io_uring)',
  ringio_epoll: 'ringio (epoll)',
  node_net: 'node:net',
  node_http: 'node:http',
  c_uring: 'C (io_uring)',
  nginx: 'nginx',
  fs_promises: 'fs/promises',
  readSync: 'fs.readSync',
};

/** The top bucket of /work/shared/bench/loadgen's latency histogram (10 µs buckets up to 40 ms). */
const P99_CAP_US = 39_990;

/** The chart shown in README.md. */
export const HEADLINE = 'echo-throughput.svg';

export const SCENARIOS = [
  {
    id: 'echo',
    title: 'TCP echo: throughput and p99 latency against connections',
    script: 'bench/echo.mjs',
    args: {
      quick: ['--rounds', '1', '--secs', '1', '--conns', '1,16,64,256'],
      full: ['--rounds', '5', '--secs', '3', '--conns', '1,4,16,64,256,512'],
    },
    about:
      '64-byte messages, one in flight per connection. Server pinned to CPU 0, load generator to CPU 1. ' +
      'Anchor: node:net in the same run; C is the io_uring reference server from /work/shared/bench.',
    notes: (rows) => [
      ...(rows.some((r) => r.server === 'c_uring')
        ? []
        : ['No C column: the reference instruments (/work/shared/bench, gcc, liburing-dev) were not available.']),
      ...(rows.some((r) => r.loadgen !== 'node' && r.p99_us >= P99_CAP_US)
        ? ['A p99 of ≥ 40,000 µs is the C load generator\'s top histogram bucket: the true p99 is 40 ms or more (charted at 40 ms).']
        : []),
      ...(rows.some((r) => r.loadgen === 'node')
        ? ['Load from bench/loadgen.mjs (Node on ringio), not the C load generator: it may be the bottleneck.']
        : []),
    ],
    columns: [
      { field: 'server', title: 'server' },
      { field: 'conns', title: 'connections', fmt: 'int' },
      { field: 'msgs_per_s', title: 'msgs/s', fmt: 'int' },
      { field: 'ratio_to_node_net', title: 'ratio to node:net', fmt: 'ratio' },
      { field: 'server_cpu_us_per_msg', title: 'server CPU µs/msg', fmt: 'fixed2' },
      { field: 'p50_us', title: 'p50 µs', fmt: 'int' },
      { field: 'p99_text', title: 'p99 µs', fmt: 'text' },
      { field: 'rounds', title: 'rounds', fmt: 'int' },
    ],
    prepare: (r) => ({
      ...r,
      p99_text: (r.loadgen !== 'node' && r.p99_us >= P99_CAP_US ? '≥ 40,000' : Math.round(r.p99_us).toLocaleString('en-US')),
    }),
    charts: [
      {
        file: 'echo-throughput.svg',
        title: 'TCP echo throughput (64 B messages)',
        kind: 'line',
        x: { field: 'conns', title: 'connections', log: true },
        y: { field: 'msgs_per_s', title: 'messages per second' },
        series: 'server',
      },
      {
        file: 'echo-p99.svg',
        title: 'TCP echo p99 latency',
        kind: 'line',
        x: { field: 'conns', title: 'connections', log: true },
        y: { field: 'p99_us', title: 'p99 round trip (µs)', log: true },
        series: 'server',
      },
    ],
  },
  {
    id: 'http',
    title: 'HTTP/1.1: node:http over ringio against node:http and nginx',
    script: 'bench/http.mjs',
    args: {
      quick: ['--rounds', '1', '--secs', '2'],
      full: ['--rounds', '5', '--secs', '5'],
    },
    requires: [{ cmd: 'wrk', hint: 'apt-get install wrk' }],
    about:
      "Keep-alive GETs of 'hello world\\n' under wrk -t1 -c64; server on CPU 0, wrk on CPU 1. Anchor: plain " +
      'node:http in the same run; nginx (one process, `return 200`) is the native reference.',
    notes: (rows) => (rows.some((r) => r.server === 'nginx') ? [] : ['No nginx column: nginx is not installed (apt-get install nginx-light).']),
    columns: [
      { field: 'server', title: 'server' },
      { field: 'req_per_s', title: 'req/s', fmt: 'int' },
      { field: 'ratio_to_node_http', title: 'ratio to node:http', fmt: 'ratio' },
      { field: 'server_cpu_us_per_req', title: 'server CPU µs/req', fmt: 'fixed2' },
      { field: 'p50_ms', title: 'p50 ms', fmt: 'fixed2' },
      { field: 'p99_ms', title: 'p99 ms', fmt: 'fixed2' },
      { field: 'rounds', title: 'rounds', fmt: 'int' },
    ],
    charts: [
      {
        file: 'http-rps.svg',
        title: 'HTTP requests per second (wrk, 64 connections)',
        kind: 'bar',
        x: { field: 'server', title: 'server' },
        y: { field: 'req_per_s', title: 'requests per second' },
        series: 'server',
      },
    ],
  },
  {
    id: 'fileread',
    title: 'File reads against queue depth',
    script: 'bench/fileread.mjs',
    args: {
      quick: ['--rounds', '1', '--secs', '1', '--case', 'rand4k:1,rand4k:4,rand4k:16,rand4k:64,rand4k:256,seq1m:1'],
      full: ['--rounds', '5', '--secs', '2', '--case', 'rand4k:1,rand4k:4,rand4k:16,rand4k:64,rand4k:256,seq1m:1'],
    },
    about:
      'Random 4 KiB reads (and sequential 1 MiB reads) from a 256 MiB file in the page cache, each ' +
      'measurement a process pinned to CPU 0: File.readAt, File.readMany (batches of QD reads), on both drivers. ' +
      'Anchors: fs/promises FileHandle.read and fs.readSync in the same run; C is fileread_uring from /work/shared/bench.',
    notes: (rows) => (rows.some((r) => r.impl === 'c_uring') ? [] : ['No C column: the reference instruments (/work/shared/bench) were not available.']),
    prepare: (r) => ({ ...r, mode: r.case.split(' ')[0], qd: Number(r.case.split(' qd')[1]), server: r.impl }),
    columns: [
      { field: 'case', title: 'case' },
      { field: 'impl', title: 'implementation' },
      { field: 'ops_per_s', title: 'ops/s', fmt: 'int' },
      { field: 'mib_per_s', title: 'MiB/s', fmt: 'int' },
      { field: 'ratio_to_fs_promises', title: 'ratio to fs/promises', fmt: 'ratio' },
      { field: 'ratio_to_c', title: 'ratio to C', fmt: 'ratio' },
      { field: 'ratio_to_c_cpu', title: 'ratio to C per CPU second', fmt: 'ratio' },
      { field: 'rounds', title: 'rounds', fmt: 'int' },
    ],
    charts: [
      {
        file: 'fileread-qd.svg',
        title: 'Random 4 KiB reads against queue depth (page cache)',
        kind: 'line',
        x: { field: 'qd', title: 'queue depth (reads in flight)', log: true },
        y: { field: 'ops_per_s', title: 'reads per second', log: true },
        series: 'impl',
        filter: (r) => r.mode === 'rand4k',
      },
    ],
  },
];

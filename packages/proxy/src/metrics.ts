/** Prometheus text exposition (format 0.0.4) of the proxy's counters, summed over threads. */
import { sumCounters } from '@ringio/service';
import type { ServerStats } from './thread.js';

/** One thread's figures for the metrics page. */
export interface ThreadStats {
  /** The thread (0..threads − 1). */
  threadId: number;
  /** Connections open on this thread now. */
  live: number;
  /** Connections this thread accepted, in total. */
  accepted: number;
  /** Each server's counters on this thread. */
  servers: ServerStats[];
}

/** The process's figures for the metrics page. */
export interface ProcessStats {
  /** How many threads run the proxy. */
  threads: number;
  /** How many configs were deployed (1 after start). */
  generation: number;
  /** Reloads that were deployed. */
  reloadsOk: number;
  /** Reloads refused (an unreadable or invalid config, or a failed deploy). */
  reloadsFailed: number;
  /** When the process started (Date.now()). */
  startTime: number;
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

class Out {
  lines: string[] = [];
  family(name: string, type: 'counter' | 'gauge', help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
  sample(name: string, labels: Record<string, string>, value: number): void {
    const l = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(',');
    this.lines.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : 0}`);
  }
}

/** The Prometheus text exposition (format 0.0.4) of the proxy's counters, summed over threads (a thread that did not answer is undefined). */
export function renderMetrics(threads: (ThreadStats | undefined)[], proc: ProcessStats): string {
  const o = new Out();
  const byServer = new Map<string, ServerStats[]>();
  for (const t of threads) for (const s of t?.servers ?? []) byServer.set(s.server, [...(byServer.get(s.server) ?? []), s]);
  const servers = [...byServer.keys()].sort();
  const sum = (name: string) => sumCounters((byServer.get(name) ?? []).map((s) => s.counters));

  o.family('ringio_proxy_connections_total', 'counter', 'Connections accepted by a server (all threads).');
  for (const s of servers) o.sample('ringio_proxy_connections_total', { server: s }, sum(s).calls);
  o.family('ringio_proxy_connections_active', 'gauge', 'Connections open now.');
  for (const s of servers) o.sample('ringio_proxy_connections_active', { server: s }, sum(s).running);
  o.family('ringio_proxy_connection_errors_total', 'counter', 'Connections that ended with an error, by error code.');
  for (const s of servers) for (const [code, n] of Object.entries(sum(s).errorCodes)) o.sample('ringio_proxy_connection_errors_total', { server: s, code }, n);
  o.family('ringio_proxy_connection_seconds_total', 'counter', 'Time connections were open, summed.');
  for (const s of servers) o.sample('ringio_proxy_connection_seconds_total', { server: s }, sum(s).seconds);
  o.family('ringio_proxy_bytes_total', 'counter', 'Bytes relayed: direction="upstream" is client to upstream, "downstream" the reverse.');
  for (const s of servers) {
    const list = byServer.get(s)!;
    o.sample('ringio_proxy_bytes_total', { server: s, direction: 'upstream' }, list.reduce((a, x) => a + x.bytesUp, 0));
    o.sample('ringio_proxy_bytes_total', { server: s, direction: 'downstream' }, list.reduce((a, x) => a + x.bytesDown, 0));
  }
  o.family('ringio_proxy_upstream_connect_failures_total', 'counter', 'Failed connects to an upstream.');
  o.family('ringio_proxy_upstream_connections_total', 'counter', 'Connections made to an upstream.');
  o.family('ringio_proxy_upstream_connections_active', 'gauge', 'Connections open to an upstream now.');
  o.family('ringio_proxy_upstream_up', 'gauge', '1 when the upstream is in rotation on every thread, 0 when some thread holds it out for a backoff.');
  const fails: string[] = [];
  for (const s of servers) {
    const ups = new Map<string, { active: number; connects: number; failures: number; up: boolean }>();
    for (const st of byServer.get(s)!) {
      for (const u of st.upstreams) {
        const a = ups.get(u.addr) ?? { active: 0, connects: 0, failures: 0, up: true };
        a.active += u.active;
        a.connects += u.connects;
        a.failures += u.failures;
        a.up &&= u.up;
        ups.set(u.addr, a);
      }
    }
    for (const [addr, a] of ups) {
      const labels = { server: s, upstream: addr };
      fails.push(addr);
      o.sample('ringio_proxy_upstream_connect_failures_total', labels, a.failures);
      o.sample('ringio_proxy_upstream_connections_total', labels, a.connects);
      o.sample('ringio_proxy_upstream_connections_active', labels, a.active);
      o.sample('ringio_proxy_upstream_up', labels, a.up ? 1 : 0);
    }
  }
  // Families must be contiguous: move the upstream samples under their headers.
  const lines = o.lines;
  const families = new Map<string, string[]>();
  const order: string[] = [];
  for (const line of lines) {
    const name = line.startsWith('#') ? line.split(' ')[2]! : line.split(/[{ ]/)[0]!;
    if (!families.has(name)) {
      families.set(name, []);
      order.push(name);
    }
    families.get(name)!.push(line);
  }
  const p = new Out();
  p.family('ringio_proxy_threads', 'gauge', 'Runtime threads.');
  p.sample('ringio_proxy_threads', {}, proc.threads);
  p.family('ringio_proxy_thread_connections_active', 'gauge', 'Connections open now, per thread.');
  threads.forEach((t, i) => p.sample('ringio_proxy_thread_connections_active', { thread: String(i) }, t?.live ?? 0));
  p.family('ringio_proxy_config_generation', 'gauge', 'How many configs were deployed (1 after start).');
  p.sample('ringio_proxy_config_generation', {}, proc.generation);
  p.family('ringio_proxy_reloads_total', 'counter', 'Reloads, by result.');
  p.sample('ringio_proxy_reloads_total', { result: 'ok' }, proc.reloadsOk);
  p.sample('ringio_proxy_reloads_total', { result: 'failed' }, proc.reloadsFailed);
  p.family('ringio_proxy_start_time_seconds', 'gauge', 'When this process started (Unix time).');
  p.sample('ringio_proxy_start_time_seconds', {}, proc.startTime / 1000);
  return [...p.lines, ...order.flatMap((n) => families.get(n)!)].join('\n') + '\n';
}

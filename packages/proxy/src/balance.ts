/**
 * Upstream choice for one server on one thread: round_robin, random, weighted (nginx's smooth weighted
 * round robin) and least_conn (fewest active connections per weight). A connect failure takes an
 * upstream out for a backoff that doubles per consecutive failure (backoff_min .. backoff_max); a
 * success brings it back. The state carries over a reload for upstreams that stay (make(old)).
 */
import type { Balance, Endpoint, UpstreamConfig } from './config.js';

/** One upstream of a server's balancer, with this thread's counters and backoff state. */
export class Upstream {
  /** The address as configured ('host:port' or 'unix:/path'); reloads keep the state of an upstream whose addr stays. */
  readonly addr: string;
  /** `addr` parsed. */
  readonly endpoint: Endpoint;
  /** Its weight (weighted and least_conn); a reload may change it. */
  weight: number;
  /** Connections open to it now (on this thread). */
  active = 0;
  /** Connections made to it, in total. */
  connects = 0;
  /** Connect failures, in total. */
  failures = 0;
  /** Consecutive connect failures. */
  streak = 0;
  /** Date.now() until which it is out (0: in). */
  downUntil = 0;
  /** For weighted: smooth round robin's current weight. */
  current = 0;

  constructor(conf: UpstreamConfig) {
    this.addr = conf.addr;
    this.endpoint = conf.endpoint;
    this.weight = conf.weight;
  }

  /** Whether it is in rotation at `now` (Date.now()): not backing off after a failed connect. */
  isUp(now: number): boolean {
    return this.downUntil <= now;
  }
}

/** A server's upstreams and its policy, per thread: orders the upstreams to try for each connection. */
export class Balancer {
  /** The upstreams, in config order. */
  readonly upstreams: Upstream[];
  /** The balance policy. */
  readonly policy: Balance;
  readonly #backoffMin: number;
  readonly #backoffMax: number;
  #next = 0;

  constructor(confs: UpstreamConfig[], policy: Balance, backoffMin: number, backoffMax: number, old?: Balancer) {
    this.policy = policy;
    this.#backoffMin = backoffMin;
    this.#backoffMax = backoffMax;
    this.upstreams = confs.map((c) => {
      const prev = old?.upstreams.find((u) => u.addr === c.addr);
      if (prev === undefined) return new Upstream(c);
      prev.weight = c.weight; // keeps active, failures and backoff
      return prev;
    });
    if (old !== undefined) this.#next = old.#next % this.upstreams.length;
  }

  /**
   * The order to try upstreams in for one connection: the policy's pick first, then the other up ones
   * (in round robin order), then the ones that are down, soonest back first (better than refusing).
   */
  order(now: number): Upstream[] {
    const ups = this.upstreams;
    const n = ups.length;
    if (n === 1) return ups;
    let first: Upstream | undefined;
    const up = ups.filter((u) => u.isUp(now));
    if (up.length > 0) {
      switch (this.policy) {
        case 'random':
          first = up[Math.floor(Math.random() * up.length)];
          break;
        case 'weighted': {
          let total = 0;
          for (const u of up) {
            u.current += u.weight;
            total += u.weight;
            if (first === undefined || u.current > first.current) first = u;
          }
          first!.current -= total;
          break;
        }
        case 'least_conn': {
          const start = this.#next++ % n;
          for (let i = 0; i < n; i++) {
            const u = ups[(start + i) % n]!;
            if (!u.isUp(now)) continue;
            if (first === undefined || u.active * first.weight < first.active * u.weight) first = u;
          }
          break;
        }
        default: {
          const start = this.#next++ % n;
          for (let i = 0; i < n && first === undefined; i++) {
            const u = ups[(start + i) % n]!;
            if (u.isUp(now)) first = u;
          }
        }
      }
    }
    const out: Upstream[] = first ? [first] : [];
    const start = ups.indexOf(first!) + 1;
    for (let i = 0; i < n; i++) {
      const u = ups[(start + i) % n]!;
      if (u !== first && u.isUp(now)) out.push(u);
    }
    const down = ups.filter((u) => !u.isUp(now)).sort((a, b) => a.downUntil - b.downUntil);
    return out.concat(down);
  }

  /** Records a failed connect: out for backoff_min · 2^(streak−1), at most backoff_max. Returns true when it just went down. */
  failed(u: Upstream, now: number): boolean {
    const wasUp = u.isUp(now);
    u.failures++;
    u.streak++;
    u.downUntil = now + Math.min(this.#backoffMax, this.#backoffMin * 2 ** Math.min(u.streak - 1, 30));
    return wasUp;
  }

  /** Records a successful connect. Returns true when it was down. */
  succeeded(u: Upstream, now: number): boolean {
    const wasDown = u.streak > 0;
    u.streak = 0;
    u.downUntil = 0;
    u.connects++;
    void now;
    return wasDown;
  }
}

/**
 * Thread 0's coordinator: owns the listening sockets, the admin endpoint and the upgrade socket; deploys
 * the config on every thread in two phases; reloads on SIGHUP and when the config file changes; hands
 * the sockets to a new binary on --upgrade; drains on SIGTERM and exits at once on SIGINT.
 */
import http from 'node:http';
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { closeSync, stats, sys } from '@ringio/runtime';
import { TcpListener, TcpStream, UnixListener, UnixStream } from '@ringio/net';
import { toDuplex } from '@ringio/compat';
import { Deployer, deployError, type Change } from '@ringio/service';
import { AcceptLoop } from './accept.js';
import { listenKey, parseConfig, type Endpoint, type ProxyConfig, type ServerConfig } from './config.js';
import { LineReader, writeLine } from './lines.js';
import { log } from './log.js';
import { renderMetrics, type ThreadStats } from './metrics.js';
import type { ProxyShared, ProxyThread, ServerData } from './thread.js';
import { removeStaleSocket, sendWithFds, TakeoverClient, type HandedSocket } from './upgrade.js';

export interface Boot {
  configPath: string;
  config: ProxyConfig;
  upgrade: boolean;
  /** Set by the coordinator: the process exit code. */
  exitCode?: number;
}

type Listener = TcpListener | UnixListener;

interface OwnedSocket {
  listener: Listener;
  kind: 'tcp' | 'unix';
  path?: string;
}

const TCP_MODULE = new URL('./tcp-proxy.js', import.meta.url).href;
const HTTP_MODULE = new URL('./http-proxy.js', import.meta.url).href;

function serverSpec(conf: ServerConfig, limitIndex: number | undefined) {
  return conf.protocol === 'http'
    ? { module: HTTP_MODULE, export: 'httpServerFactory', args: { ...conf, limitIndex } }
    : { module: TCP_MODULE, export: 'tcpServerFactory', args: { ...conf, limitIndex } };
}

async function bindEndpoint(ep: Endpoint, backlog: number, inherited: Map<string, { fd: number; kind: 'tcp' | 'unix' }>): Promise<OwnedSocket> {
  const lkey = listenKey(ep);
  const got = inherited.get(lkey);
  if (got !== undefined) {
    inherited.delete(lkey);
    // The socket the old process was listening on, with its accept queue.
    return got.kind === 'tcp'
      ? { listener: TcpListener.fromFd(got.fd), kind: 'tcp' }
      : { listener: UnixListener.fromFd(got.fd, (ep as { path: string }).path), kind: 'unix', path: (ep as { path: string }).path };
  }
  if (ep.kind === 'unix') {
    await removeStaleSocket(ep.path);
    return { listener: await UnixListener.bind(ep.path, { backlog }), kind: 'unix', path: ep.path };
  }
  // reusePort off: a port that another process holds is an error, not a silent share.
  return { listener: await TcpListener.bind({ host: ep.host, port: ep.port }, { reusePort: false, backlog }), kind: 'tcp' };
}

function release(s: OwnedSocket, unlink: boolean): Promise<void> {
  const p = s.listener.close();
  if (unlink && s.path !== undefined && !s.path.startsWith('\0')) rmSync(s.path, { force: true });
  return p;
}

interface AdminState {
  lkey: string;
  sock: OwnedSocket;
  loop: AcceptLoop;
  server: http.Server;
}

class Coordinator {
  readonly deployer: Deployer;
  readonly sockets = new Map<string, OwnedSocket>();
  running: ProxyConfig | undefined;
  generation = 0;
  reloadsOk = 0;
  reloadsFailed = 0;
  readonly startTime = Date.now();
  #admin: AdminState | undefined;
  #upgradeLoop: AcceptLoop | undefined;
  #upgradeSock: OwnedSocket | undefined;
  #watcher: FSWatcher | undefined;
  #stop!: (how: 'drain' | 'handover') => void;
  readonly #stopped = new Promise<'drain' | 'handover'>((r) => (this.#stop = r));
  #reloading: Promise<void> = Promise.resolve();
  #reloadQueued = false;
  #debounce: NodeJS.Timeout | undefined;
  #handingOver = false;
  #failedHash: string | undefined;
  readonly #limitCells = new Map<string, number>();

  constructor(
    readonly shared: ProxyShared,
    readonly boot: Boot,
    readonly local: ProxyThread,
  ) {
    this.deployer = new Deployer(shared.plane);
  }

  // --- deploys ---------------------------------------------------------------------------------

  /** Binds what `next` needs, deploys the difference on every thread, releases what is unused. */
  async apply(next: ProxyConfig, inherited = new Map<string, { fd: number; kind: 'tcp' | 'unix' }>()): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const prev = this.running?.servers ?? {};
    const changes: Change[] = [];
    const bound: string[] = [];
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    try {
      for (const [name, conf] of Object.entries(next.servers)) {
        const old = prev[name];
        if (old !== undefined && JSON.stringify(old) === JSON.stringify(conf)) continue;
        (old === undefined ? added : changed).push(name);
        const lkey = listenKey(conf.endpoint);
        let sock = this.sockets.get(lkey);
        if (sock === undefined) {
          try {
            sock = await bindEndpoint(conf.endpoint, conf.backlog, inherited);
          } catch (e) {
            throw Object.assign(new Error(`servers.${name}.listen: cannot listen on ${conf.listen}: ${(e as Error).message}`), { code: (e as { code?: string }).code });
          }
          this.sockets.set(lkey, sock);
          bound.push(lkey);
        }
        const data: ServerData = { conf, fd: sock.listener.fd, lkey };
        changes.push({ key: name, spec: serverSpec(conf, this.#limitIndex(name)), data });
      }
      for (const name of Object.keys(prev)) {
        if (next.servers[name] === undefined) {
          removed.push(name);
          changes.push({ key: name, spec: null });
        }
      }
      if (changes.length > 0) {
        const report = await this.deployer.deploy(changes);
        if (!report.ok) {
          for (const t of report.threads) if (t.error) log('error', 'deploy_thread_failed', { deploy: report.id, thread: t.threadId, error: t.error });
          throw deployError(report);
        }
        log('info', 'deployed', { deploy: report.id, threads: report.threads.length, added: added.join(',') || undefined, changed: changed.join(',') || undefined, removed: removed.join(',') || undefined });
      }
    } catch (e) {
      for (const lkey of bound) {
        const s = this.sockets.get(lkey);
        this.sockets.delete(lkey);
        if (s) await release(s, true);
      }
      throw e;
    }
    this.running = next;
    this.generation++;
    // Sockets no server uses any more: every thread has stopped accepting on them (commit waited).
    const used = new Set(Object.values(next.servers).map((s) => listenKey(s.endpoint)));
    for (const [lkey, s] of this.sockets) {
      if (used.has(lkey)) continue;
      this.sockets.delete(lkey);
      await release(s, true);
    }
    return { added, changed, removed };
  }

  async reload(reason: string): Promise<void> {
    if (this.#reloadQueued) return;
    this.#reloadQueued = true;
    this.#reloading = this.#reloading.then(async () => {
      this.#reloadQueued = false;
      if (this.#handingOver) return;
      let text: string;
      try {
        text = readFileSync(this.boot.configPath, 'utf8');
      } catch (e) {
        this.reloadsFailed++;
        log('error', 'reload_failed', { reason, error: `${this.boot.configPath}: cannot read the config: ${(e as Error).message}`, kept: 'the running config' });
        return;
      }
      const hash = createHash('sha256').update(text).digest('hex');
      if (hash === this.running?.hash) {
        if (reason === 'SIGHUP') log('info', 'reload_unchanged', { reason });
        return;
      }
      // A file event for the text that just failed (editors touch a file more than once): say it once.
      if (reason !== 'SIGHUP' && hash === this.#failedHash) return;
      let next: ProxyConfig;
      try {
        next = parseConfig(text, this.boot.configPath);
      } catch (e) {
        this.reloadsFailed++;
        this.#failedHash = hash;
        log('error', 'reload_failed', { reason, error: (e as Error).message, kept: 'the running config' });
        return;
      }
      if (JSON.stringify(next.runtime) !== JSON.stringify(this.running?.runtime)) {
        log('warn', 'restart_needed', { reason, keys: 'runtime', note: '[runtime] changes take effect with --upgrade or a restart' });
      }
      if (next.upgrade.socket !== this.running?.upgrade.socket) {
        log('warn', 'restart_needed', { reason, keys: 'upgrade.socket', note: 'the upgrade socket stays where it is until the next start' });
      }
      try {
        await this.#applyAdmin(next);
        const r = await this.apply(next);
        this.reloadsOk++;
        log('info', 'reloaded', { reason, generation: this.generation, added: r.added.length, changed: r.changed.length, removed: r.removed.length });
      } catch (e) {
        this.reloadsFailed++;
        this.#failedHash = next.hash;
        log('error', 'reload_failed', { reason, error: (e as Error).message, kept: 'the running config' });
      }
    });
    return this.#reloading;
  }

  /**
   * The shared cell a server's connections count in. Kept per name for the process's life (a removed
   * server's connections may still be draining), so a server keeps its count across reloads.
   */
  #limitIndex(name: string): number | undefined {
    let i = this.#limitCells.get(name);
    if (i === undefined && this.#limitCells.size < (this.shared.limits?.length ?? 0)) this.#limitCells.set(name, (i = this.#limitCells.size));
    if (i === undefined) log('warn', 'limit_cells_exhausted', { server: name, note: 'max_connections counts per thread for this server' });
    return i;
  }

  // --- admin -----------------------------------------------------------------------------------

  async #applyAdmin(next: ProxyConfig, inherited?: Map<string, { fd: number; kind: 'tcp' | 'unix' }>): Promise<void> {
    const want = next.admin ? 'admin:' + listenKey(next.admin.endpoint) : undefined;
    if (want === this.#admin?.lkey) return;
    let fresh: AdminState | undefined;
    if (next.admin !== null) {
      let sock: OwnedSocket;
      try {
        sock = await bindEndpoint(next.admin.endpoint, 128, inherited ?? new Map());
      } catch (e) {
        throw Object.assign(new Error(`admin.listen: cannot listen on ${next.admin.listen}: ${(e as Error).message}`), { code: (e as { code?: string }).code });
      }
      const server = http.createServer((req, res) => this.#serveAdmin(req, res));
      server.emit('listening');
      const kind = sock.kind;
      const loop = new AcceptLoop(sys.dup(sock.listener.fd), (fd) => {
        try {
          const stream = kind === 'tcp' ? TcpStream.fromFd(fd) : UnixStream.fromFd(fd);
          server.emit('connection', toDuplex(stream));
        } catch {
          closeSync(fd);
        }
      }, 'admin');
      fresh = { lkey: want!, sock, loop, server };
      log('info', 'admin_listening', { listen: next.admin.listen });
    }
    const old = this.#admin;
    this.#admin = fresh;
    if (old) {
      await old.loop.stop();
      old.server.closeAllConnections?.();
      await release(old.sock, true);
    }
  }

  async #serveAdmin(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
      }
      if (url === '/metrics') {
        const threads = (await this.deployer.query({ op: 'stats' }, { timeout: 5000 })) as (ThreadStats | undefined)[];
        const body = renderMetrics(threads, { threads: this.deployer.threads, generation: this.generation, reloadsOk: this.reloadsOk, reloadsFailed: this.reloadsFailed, startTime: this.startTime });
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
      } else if (url === '/config') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ generation: this.generation, ...this.running }, null, 2) + '\n');
      } else if (url === '/health' || url === '/') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /config\n');
      }
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`error: ${(e as Error).message}\n`);
    }
  }

  // --- upgrade ---------------------------------------------------------------------------------

  async #bindUpgradeSocket(): Promise<void> {
    const path = this.boot.config.upgrade.socket;
    // After a takeover the old process's socket file is still there (it does not unlink it on handover).
    if (this.boot.upgrade) rmSync(path, { force: true });
    else await removeStaleSocket(path);
    const listener = await UnixListener.bind(path, { backlog: 8 });
    this.#upgradeSock = { listener, kind: 'unix', path };
    this.#upgradeLoop = new AcceptLoop(sys.dup(listener.fd), (fd) => void this.#serveTakeover(UnixStream.fromFd(fd)), 'upgrade');
  }

  async #serveTakeover(stream: UnixStream): Promise<void> {
    const reader = new LineReader(stream);
    try {
      const req = await reader.next(AbortSignal.timeout(30000));
      if (req?.op !== 'takeover') throw new Error(`unexpected request ${JSON.stringify(req)}`);
      if (this.#handingOver) throw new Error('another upgrade is in progress');
      this.#handingOver = true;
      await this.#reloading;
      const handed: HandedSocket[] = [];
      const fds: number[] = [];
      for (const [lkey, s] of this.sockets) {
        handed.push({ lkey, kind: s.kind, role: 'server' });
        fds.push(s.listener.fd);
      }
      if (this.#admin) {
        handed.push({ lkey: this.#admin.lkey.slice('admin:'.length), kind: this.#admin.sock.kind, role: 'admin' });
        fds.push(this.#admin.sock.listener.fd);
      }
      log('info', 'upgrade_started', { newPid: req.pid, sockets: handed.length });
      await sendWithFds(stream, { op: 'sockets', pid: process.pid, sockets: handed }, fds);
      const ack = await reader.next(AbortSignal.timeout(120000));
      if (ack?.op !== 'serving') throw new Error(`the new process did not start serving (${ack === undefined ? 'it hung up' : JSON.stringify(ack)})`);
      await writeLine(stream, { op: 'stopping' });
      log('info', 'upgrade_handed_over', { newPid: req.pid, drainTimeout: this.boot.config.upgrade.drainTimeout });
      this.#stop('handover');
    } catch (e) {
      if (this.#handingOver) log('error', 'upgrade_aborted', { error: (e as Error).message, kept: 'this process keeps serving' });
      this.#handingOver = false;
    } finally {
      await stream.close();
    }
  }

  // --- life ------------------------------------------------------------------------------------

  #installSignals(): () => void {
    const hup = () => void this.reload('SIGHUP');
    const term = () => {
      log('info', 'stopping', { signal: 'SIGTERM', drainTimeout: this.boot.config.upgrade.drainTimeout });
      this.#stop('drain');
    };
    const int = () => {
      log('info', 'exiting', { signal: 'SIGINT' });
      process.exit(130);
    };
    process.on('SIGHUP', hup);
    process.on('SIGTERM', term);
    process.on('SIGINT', int);
    return () => {
      process.off('SIGHUP', hup);
      process.off('SIGTERM', term);
      process.off('SIGINT', int);
    };
  }

  #watchConfig(): void {
    const file = this.boot.configPath;
    try {
      // Watch the folder: editors replace files by renaming, which a watch on the file itself misses.
      this.#watcher = fsWatch(dirname(file), (_event, name) => {
        if (name !== null && name !== basename(file)) return;
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => void this.reload('file changed'), 100);
      });
      this.#watcher.on('error', (e) => log('warn', 'config_watch_failed', { error: e.message }));
    } catch (e) {
      log('warn', 'config_watch_failed', { error: (e as Error).message, note: 'reload with SIGHUP' });
    }
  }

  async run(): Promise<void> {
    const uninstall = this.#installSignals();
    const cfg = this.boot.config;
    let takeover: TakeoverClient | undefined;
    const inherited = new Map<string, { fd: number; kind: 'tcp' | 'unix' }>();
    const inheritedAdmin = new Map<string, { fd: number; kind: 'tcp' | 'unix' }>();
    try {
      if (this.boot.upgrade) {
        takeover = await TakeoverClient.connect(cfg.upgrade.socket);
        for (const s of takeover.sockets) (s.role === 'admin' ? inheritedAdmin : inherited).set(s.lkey, { fd: s.fd, kind: s.kind });
        log('info', 'upgrade_received', { oldPid: takeover.oldPid, sockets: takeover.sockets.length });
      }
      await this.#applyAdmin(cfg, inheritedAdmin);
      await this.apply(cfg, inherited);
    } catch (e) {
      log('error', 'start_failed', { error: (e as Error).message });
      await takeover?.cancel((e as Error).message);
      for (const m of [inherited, inheritedAdmin]) for (const { fd } of m.values()) closeSync(fd);
      await this.#shutdown(false, 0);
      uninstall();
      this.boot.exitCode = 1;
      return;
    }
    // Sockets handed over that this config does not use.
    for (const m of [inherited, inheritedAdmin]) for (const { fd } of m.values()) closeSync(fd);
    if (takeover) {
      try {
        await takeover.serving();
        log('info', 'upgrade_complete', { oldPid: takeover.oldPid });
      } catch (e) {
        log('warn', 'upgrade_confirm_failed', { error: (e as Error).message });
      }
    }
    try {
      await this.#bindUpgradeSocket();
    } catch (e) {
      log('warn', 'upgrade_socket_failed', { path: cfg.upgrade.socket, error: (e as Error).message, note: '--upgrade will not find this process' });
    }
    this.#watchConfig();
    const st = stats();
    log('info', 'started', { pid: process.pid, threads: this.deployer.threads, driver: st.driver, fallback: st.fallbackReason ?? undefined, servers: Object.keys(cfg.servers).length, config: this.boot.configPath });
    const how = await this.#stopped;
    await this.#shutdown(how === 'handover', this.running?.upgrade.drainTimeout ?? cfg.upgrade.drainTimeout);
    uninstall();
    this.boot.exitCode = 0;
  }

  async #shutdown(handedOver: boolean, drainMs: number): Promise<void> {
    this.#watcher?.close();
    clearTimeout(this.#debounce);
    await this.#reloading.catch(() => {});
    await this.#upgradeLoop?.stop();
    if (this.#upgradeSock) await release(this.#upgradeSock, !handedOver);
    if (this.#admin) {
      await this.#admin.loop.stop();
      this.#admin.server.closeAllConnections?.();
      await release(this.#admin.sock, !handedOver);
      this.#admin = undefined;
    }
    const res = (await this.deployer.query({ op: 'drain', ms: drainMs }, { timeout: drainMs + 10000 })) as ({ left: number } | undefined)[];
    const forced = res.reduce((a, r) => a + (r?.left ?? 0), 0);
    for (const s of this.sockets.values()) await release(s, !handedOver);
    this.sockets.clear();
    log('info', 'drained', { forced, handedOver });
  }
}

export async function runCoordinator(shared: ProxyShared, local: ProxyThread): Promise<void> {
  const boot = shared.boot as Boot;
  await new Coordinator(shared, boot, local).run();
}

/** The ringio-proxy program: `ringio-proxy --config FILE [--upgrade] [--log-format text|json] [--check]`. */
import { resolve } from 'node:path';
import { start } from '@ringio/runtime';
import { deployPlane } from '@ringio/service';
import { loadConfig, type ProxyConfig } from './config.js';
import { log, setLogFormat } from './log.js';
import type { Boot } from './coordinator.js';
import type { ProxyShared } from './thread.js';

const USAGE = `usage: ringio-proxy --config FILE [--upgrade] [--log-format text|json] [--check]

  --config FILE       the TOML (or JSON) config; see docs/api/proxy.md
  --upgrade           take the listening sockets over from the running ringio-proxy (same
                      [upgrade] socket), start serving, then let the old process drain and exit
  --log-format F      text (default) or json: one line per event on stderr
  --check             check the config and exit (0: valid, 2: invalid)

signals: SIGHUP reloads the config (so does saving the file); SIGTERM stops accepting, drains
connections up to [upgrade] drain_timeout and exits; SIGINT exits at once.`;

/** Servers (distinct names over the process's life) whose max_connections is counted process-wide. */
export const LIMIT_CELLS = 4096;

/** ringio-proxy's command line, parsed. */
export interface CliArgs {
  /** --config FILE (required). */
  config: string;
  /** --upgrade: take the listeners over from a running proxy (a binary upgrade). */
  upgrade: boolean;
  /** --log-format: 'text' or 'json'; undefined: the config's [log] format. */
  logFormat: 'text' | 'json' | undefined;
  /** --check: check the config and exit (0 valid, 2 invalid). */
  check: boolean;
}

/** Parses the command line (without node and the script); a TypeError names a bad or missing argument. --help prints the usage and exits. */
export function parseArgs(argv: string[]): CliArgs {
  const out: CliArgs = { config: '', upgrade: false, logFormat: undefined, check: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new TypeError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--config' || flag === '-c') out.config = value();
    else if (flag === '--upgrade') out.upgrade = true;
    else if (flag === '--check') out.check = true;
    else if (flag === '--log-format') {
      const v = value();
      if (v !== 'text' && v !== 'json') throw new TypeError(`--log-format must be text or json, got ${v}`);
      out.logFormat = v;
    } else if (flag === '--help' || flag === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else throw new TypeError(`unknown argument ${a}`);
  }
  if (out.config === '') throw new TypeError('--config FILE is required');
  return out;
}

/** The ringio-proxy program: parses `argv`, loads the config and runs the proxy until a signal stops it (exit 2 on bad arguments or config). */
export async function main(argv: string[]): Promise<void> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`ringio-proxy: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  let config: ProxyConfig;
  try {
    config = loadConfig(args.config);
  } catch (e) {
    setLogFormat(args.logFormat ?? 'text');
    log('error', 'config_invalid', { error: (e as Error).message });
    process.exit(2);
  }
  const format = args.logFormat ?? config.log.format;
  setLogFormat(format);
  if (args.check) {
    log('info', 'config_valid', { config: args.config, servers: Object.keys(config.servers).length });
    process.exit(0);
  }
  // Until the coordinator takes over the signals, a SIGHUP must not end the process (its default).
  process.on('SIGHUP', () => {});
  const threads = config.runtime.threads === 'auto' ? (await import('node:os')).availableParallelism() : config.runtime.threads;
  const boot: Boot = { configPath: resolve(args.config), config, upgrade: args.upgrade };
  const limits = new Int32Array(new SharedArrayBuffer(4 * LIMIT_CELLS));
  const shared: ProxyShared = { plane: deployPlane(threads), logFormat: format, boot, limits };
  try {
    await start(
      { module: new URL('./entry.js', import.meta.url), export: 'proxyThread' },
      {
        threads,
        pin: config.runtime.pin,
        // 'auto' leaves the choice to RINGIO_DRIVER (then auto-detection).
        ...(config.runtime.driver !== 'auto' ? { driver: config.runtime.driver } : {}),
        shared,
        shutdownTimeout: 1000,
      },
    );
  } catch (e) {
    log('error', 'runtime_failed', { error: (e as Error).message, code: (e as { code?: string }).code });
    process.exit(1);
  }
  process.exit(boot.exitCode ?? 1);
}

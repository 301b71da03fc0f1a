// @ringio/proxy from its tarball: a config parsed, a bad one refused with its key and line, and the
// installed ringio-proxy program checking a config file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, ConfigError } from '@ringio/proxy';

const good = `[servers.echo]\nlisten = "127.0.0.1:7000"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:7001" }]\n`;
const cfg = parseConfig(good, 'good.toml');
if (!cfg.servers || Object.keys(cfg.servers).length !== 1) throw new Error('the good config lost its server');
let err;
try {
  parseConfig(good + 'balance = "fastest"\n', 'bad.toml');
} catch (e) {
  err = e;
}
if (!(err instanceof ConfigError) || !/balance/.test(err.message) || !/5/.test(err.message)) {
  throw new Error(`a bad balance was not refused with its key and line: ${err?.message}`);
}
const dir = mkdtempSync(join(tmpdir(), 'ringio-smoke-proxy-'));
try {
  const file = join(dir, 'proxy.toml');
  writeFileSync(file, good);
  execFileSync(process.execPath, [join('node_modules', '@ringio', 'proxy', 'bin', 'ringio-proxy.js'), '--config', file, '--check'], { stdio: 'pipe' });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log('ok proxy: a config parsed, a bad one refused by key and line, ringio-proxy --check passed');

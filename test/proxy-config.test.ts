/** ringio-proxy's config: every key, the defaults, and errors that name the key path and its line. */
import test from 'ava';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { ConfigError, locateKey, parseConfig, parseArgs } from '@ringio/proxy';
import { BIN, freePort, tempDir } from './proxy-helpers.js';

const FULL = `
[runtime]
threads = 2            # or "auto"
pin = [0, 1]
driver = "epoll"

[admin]
listen = "127.0.0.1:9901"

[upgrade]
socket = "/tmp/ringio-test-upgrade.sock"
drain_timeout = "5s"

[log]
format = "json"

[servers.echo]
listen = "127.0.0.1:7000"
protocol = "tcp"
upstreams = [{ addr = "127.0.0.1:7001", weight = 3 }, { addr = "unix:/tmp/up.sock" }]
balance = "weighted"
connect_timeout = "250ms"
idle_timeout = 60000
max_connections = 100
connect_attempts = 2
backoff_min = "100ms"
backoff_max = "2s"
proxy_protocol = "v2"
splice = "never"
buffer_size = 32768
backlog = 512
access_log = true

[servers.local]
listen = "unix:/tmp/ringio-local.sock"
protocol = "tcp"
upstreams = [{ addr = "[::1]:7002" }]
`;

test('every key is read', (t) => {
  const c = parseConfig(FULL, 'full.toml');
  t.deepEqual(c.runtime, { threads: 2, pin: [0, 1], driver: 'epoll' });
  t.like(c.admin, { listen: '127.0.0.1:9901', endpoint: { kind: 'tcp', host: '127.0.0.1', port: 9901 } });
  t.deepEqual(c.upgrade, { socket: '/tmp/ringio-test-upgrade.sock', drainTimeout: 5000 });
  t.deepEqual(c.log, { format: 'json' });
  const e = c.servers.echo!;
  t.like(e, {
    name: 'echo',
    listen: '127.0.0.1:7000',
    protocol: 'tcp',
    balance: 'weighted',
    connectTimeout: 250,
    idleTimeout: 60000,
    maxConnections: 100,
    connectAttempts: 2,
    backoffMin: 100,
    backoffMax: 2000,
    proxyProtocol: 'v2',
    splice: 'never',
    bufferSize: 32768,
    backlog: 512,
    accessLog: true,
  });
  t.deepEqual(
    e.upstreams.map((u) => [u.addr, u.weight, u.endpoint.kind]),
    [
      ['127.0.0.1:7001', 3, 'tcp'],
      ['unix:/tmp/up.sock', 1, 'unix'],
    ],
  );
  t.like(c.servers.local!, { endpoint: { kind: 'unix', path: '/tmp/ringio-local.sock' }, upstreams: [{ endpoint: { kind: 'tcp', host: '::1', port: 7002 } }] });
});

test('defaults', (t) => {
  const c = parseConfig('[servers.a]\nlisten = "127.0.0.1:1"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:2" }, { addr = "127.0.0.1:3" }]\n', 'd.toml');
  t.deepEqual(c.runtime, { threads: 1, pin: false, driver: 'auto' });
  t.is(c.admin, null);
  t.is(c.upgrade.drainTimeout, 30000);
  t.regex(c.upgrade.socket, /^\/tmp\/ringio-proxy-[0-9a-f]{16}\.sock$/);
  t.is(c.log.format, 'text');
  t.like(c.servers.a!, { balance: 'round_robin', connectTimeout: 5000, idleTimeout: 600000, maxConnections: 0, connectAttempts: 2, backoffMin: 1000, backoffMax: 30000, proxyProtocol: 'off', splice: 'auto', bufferSize: 16384, backlog: 1024, accessLog: false });
  t.is(parseConfig('[runtime]\nthreads = "auto"\npin = true\n[admin]\nlisten = "unix:/tmp/a.sock"\n').runtime.threads, 'auto');
  t.like(parseConfig('[servers.a]\nlisten="127.0.0.1:1"\nprotocol="tcp"\nupstreams=[{addr="127.0.0.1:2"}]\nsplice=true\nproxy_protocol="v1"\n').servers.a!, { splice: 'always', proxyProtocol: 'v1', connectAttempts: 1 });
});

test('JSON configs (text starting with {) use the same keys', (t) => {
  const c = parseConfig(JSON.stringify({ runtime: { threads: 3 }, servers: { j: { listen: '127.0.0.1:5', protocol: 'tcp', upstreams: [{ addr: '127.0.0.1:6' }], balance: 'least_conn' } } }, null, 2), 'c.json');
  t.is(c.runtime.threads, 3);
  t.is(c.servers.j!.balance, 'least_conn');
  const err = t.throws(() => parseConfig('{\n  "servers": {\n    "j": {\n      "listen": "127.0.0.1:5",\n      "protocol": "udp"\n    }\n  }\n}\n', 'c.json'), { instanceOf: ConfigError })!;
  t.is(err.key, 'servers.j.protocol');
  t.is(err.line, 5);
  const syn = t.throws(() => parseConfig('{\n "a": 1,\n}', 'bad.json'), { instanceOf: ConfigError })!;
  t.regex(syn.message, /^bad\.json(:\d+)?: invalid JSON/);
});

const BASE = '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:2" }]\n';

const bad: [string, string, string, number | undefined, RegExp][] = [
  ['TOML syntax', '[runtime]\nthreads = 2\npin = tru\n', '', 3, /invalid/i],
  ['unknown top-level key', 'colour = "red"\n' + BASE, 'colour', 1, /unknown key/],
  ['unknown server key', BASE + 'listn = "x"\n', 'servers.s.listn', 5, /unknown key.*known keys here: listen/],
  ['threads type', '[runtime]\nthreads = "two"\n' + BASE, 'runtime.threads', 2, /integer in 1\.\.1024/],
  ['threads range', '[runtime]\nthreads = 0\n' + BASE, 'runtime.threads', 2, /integer in 1\.\.1024/],
  ['pin cpu', '[runtime]\npin = [0, -1]\n' + BASE, 'runtime.pin[1]', 2, /0\.\.1023/],
  ['driver', '[runtime]\ndriver = "io_uring"\n' + BASE, 'runtime.driver', 2, /"uring", "epoll"|"auto", "uring"/],
  ['admin without listen', '[admin]\n' + BASE, 'admin', 1, /needs listen/],
  ['admin listen', '[admin]\nlisten = "nowhere"\n' + BASE, 'admin.listen', 2, /host:port/],
  ['relative upgrade socket', '[upgrade]\nsocket = "up.sock"\n' + BASE, 'upgrade.socket', 2, /absolute path/],
  ['drain_timeout', '[upgrade]\ndrain_timeout = "soon"\n' + BASE, 'upgrade.drain_timeout', 2, /duration/],
  ['log format', '[log]\nformat = "xml"\n' + BASE, 'log.format', 2, /"text", "json"/],
  ['missing listen', '[servers.s]\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:2" }]\n', 'servers.s', 1, /needs listen/],
  ['missing protocol', '[servers.s]\nlisten = "127.0.0.1:1"\nupstreams = [{ addr = "127.0.0.1:2" }]\n', 'servers.s', 1, /needs protocol/],
  ['bad protocol', BASE.replace('"tcp"', '"udp"'), 'servers.s.protocol', 3, /"tcp", "http", got "udp"/],
  ['http: a tcp-only key', BASE.replace('"tcp"', '"http"'), 'servers.s.upstreams', 4, /only for protocol = "tcp"/],
  ['http: missing routes', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n', 'servers.s', 1, /needs routes/],
  ['http: route without upstreams', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n'.replace('upstreams = [{ url = "http://127.0.0.1:2" }]\n', ''), 'servers.s.routes[0]', 4, /needs upstreams/],
  ['http: upstream url with a path', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n'.replace('127.0.0.1:2"', '127.0.0.1:2/x"'), 'servers.s.routes[0].upstreams[0].url', 6, /origin/],
  ['http: ws upstream', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n'.replace('http://127', 'ws://127'), 'servers.s.routes[0].upstreams[0].url', 6, /must be an origin such as "http:\/\/127\.0\.0\.1:9080" or "https:/],
  ['http: path without a slash', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n'.replace('"/api/"', '"api"'), 'servers.s.routes[0].path', 5, /starting with "\/"/],
  ['http: host with a port', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n'.replace('path =', 'host = "a.test:80"\npath ='), 'servers.s.routes[0].host', 5, /without a port/],
  ['http: duplicate route', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n' + '[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:3" }]\n', 'servers.s.routes[1].path', 8, /also routes\[0\]/],
  ['http: response and upstreams', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n' + 'response = { status = 200 }\n', 'servers.s.routes[0].upstreams', 6, /either upstreams or a response/],
  ['http: setting a framing field', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n' + 'set_request_headers = { "Content-Length" = "1" }\n', 'servers.s.routes[0].set_request_headers.Content-Length', 7, /framing or hop-by-hop/],
  ['http: a header value with a newline', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n' + 'set_response_headers = { x = "a\\nb" }\n', 'servers.s.routes[0].set_response_headers.x', 7, /without CR, LF/],
  ['http: bad balance', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.s.routes]]\npath = "/api/"\nupstreams = [{ url = "http://127.0.0.1:2" }]\n'.replace('path =', 'balance = "rr"\npath ='), 'servers.s.routes[0].balance', 5, /"round_robin"/],
  ['missing upstreams', '[servers.s]\nlisten = "127.0.0.1:1"\nprotocol = "tcp"\n', 'servers.s', 1, /needs upstreams/],
  ['empty upstreams', BASE.replace('[{ addr = "127.0.0.1:2" }]', '[]'), 'servers.s.upstreams', 4, /non-empty array/],
  ['upstream without addr', BASE.replace('{ addr = "127.0.0.1:2" }', '{ weight = 2 }'), 'servers.s.upstreams[0]', 4, /needs addr/],
  ['upstream bad addr', BASE.replace('127.0.0.1:2', '127.0.0.1:99999'), 'servers.s.upstreams[0].addr', 4, /0\.\.65535/],
  ['upstream weight', BASE.replace('"127.0.0.1:2" }', '"127.0.0.1:2", weight = 0 }'), 'servers.s.upstreams[0].weight', 4, /1\.\.1000000/],
  ['unix path empty', BASE.replace('"127.0.0.1:1"', '"unix:"'), 'servers.s.listen', 2, /needs a path/],
  ['balance', BASE + 'balance = "fastest"\n', 'servers.s.balance', 5, /"round_robin", "random", "weighted", "least_conn"/],
  ['connect_timeout zero', BASE + 'connect_timeout = 0\n', 'servers.s.connect_timeout', 5, /\(> 0\)/],
  ['idle_timeout type', BASE + 'idle_timeout = true\n', 'servers.s.idle_timeout', 5, /duration/],
  ['max_connections', BASE + 'max_connections = -1\n', 'servers.s.max_connections', 5, /integer/],
  ['connect_attempts', BASE + 'connect_attempts = 0\n', 'servers.s.connect_attempts', 5, /1\.\.100/],
  ['backoff order', BASE + 'backoff_min = "5s"\nbackoff_max = "1s"\n', 'servers.s.backoff_max', 6, />= backoff_min/],
  ['proxy_protocol', BASE + 'proxy_protocol = "v3"\n', 'servers.s.proxy_protocol', 5, /"off", "v1", "v2"/],
  ['splice', BASE + 'splice = "sometimes"\n', 'servers.s.splice', 5, /"auto", "always", "never"/],
  ['buffer_size', BASE + 'buffer_size = 10\n', 'servers.s.buffer_size', 5, /1024\.\./],
  ['backlog', BASE + 'backlog = 70000\n', 'servers.s.backlog', 5, /1\.\.65535/],
  ['access_log', BASE + 'access_log = "yes"\n', 'servers.s.access_log', 5, /true or false/],
  ['server name', '[servers."a b"]\nlisten = "127.0.0.1:1"\n', 'servers.a b', 1, /letters, digits/],
  ['duplicate listen', BASE + '[servers.t]\nlisten = "127.0.0.1:1"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:2" }]\n', 'servers.t.listen', 6, /also the listen address of servers\.s/],
  ['servers not a table', 'servers = 3\n', 'servers', 1, /must be a table/],
  ['nothing to do', '[runtime]\nthreads = 1\n', 'servers', undefined, /nothing to do/],
];

for (const [what, text, key, line, msg] of bad) {
  test(`bad config: ${what} names ${key || 'the position'}${line !== undefined ? ` at line ${line}` : ''}`, (t) => {
    const err = t.throws(() => parseConfig(text, 'proxy.toml'), { instanceOf: ConfigError })!;
    t.is(err.code, 'ERR_RINGIO_CONFIG');
    t.is(err.key, key);
    t.is(err.line, line);
    t.regex(err.message, msg);
    t.true(err.message.startsWith(`proxy.toml${line !== undefined ? `:${line}` : ''}`), err.message);
    if (key !== '') t.true(err.message.includes(`: ${key}: `), err.message);
  });
}

test('locateKey finds keys in tables, dotted keys and inline arrays spread over lines', (t) => {
  const text = '[servers.a]\nlisten = "x"\nupstreams = [\n  { addr = "1" },\n  { addr = "2", weight = 0 },\n]\n[servers.b]\nc.d = 1\n';
  t.is(locateKey(text, ['servers', 'a', 'listen'], false), 2);
  t.is(locateKey(text, ['servers', 'a', 'upstreams', 1, 'weight'], false), 5);
  t.is(locateKey(text, ['servers', 'b', 'c', 'd'], false), 8);
  t.is(locateKey(text, ['servers', 'b'], false), 7);
});

test('command line arguments', (t) => {
  t.deepEqual(parseArgs(['--config', 'a.toml', '--upgrade', '--log-format=json']), { config: 'a.toml', upgrade: true, logFormat: 'json', check: false });
  t.throws(() => parseArgs([]), { message: /--config FILE is required/ });
  t.throws(() => parseArgs(['--config']), { message: /needs a value/ });
  t.throws(() => parseArgs(['--config', 'a', '--log-format', 'xml']), { message: /text or json/ });
  t.throws(() => parseArgs(['--config', 'a', '--frobnicate']), { message: /unknown argument/ });
});

test('the program exits non-zero on a bad config before binding anything, naming the key and line', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const port = await freePort();
  const file = tmp.file(
    'bad.toml',
    `[servers.good]\nlisten = "127.0.0.1:${port}"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:1" }]\n\n[servers.bad]\nlisten = "127.0.0.1:${port + 1}"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:1" }]\nbalance = "rr"\n`,
  );
  const r = spawnSync(process.execPath, [BIN, '--config', file], { encoding: 'utf8', timeout: 30000 });
  t.is(r.status, 2);
  t.regex(r.stderr, /config_invalid/);
  t.true(r.stderr.includes(`bad.toml:10: servers.bad.balance: must be one of`), r.stderr);
  // Nothing was bound: the good server's port is free.
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => s.once('error', reject).listen(port, '127.0.0.1', resolve));
  await new Promise((r2) => s.close(r2));
  const missing = spawnSync(process.execPath, [BIN, '--config', tmp.file('nope.toml')], { encoding: 'utf8', timeout: 30000 });
  t.is(missing.status, 2);
  t.regex(missing.stderr, /cannot read the config/);
  const ok = tmp.file('ok.toml', `[servers.a]\nlisten = "127.0.0.1:${port}"\nprotocol = "tcp"\nupstreams = [{ addr = "127.0.0.1:1" }]\n`);
  const check = spawnSync(process.execPath, [BIN, '--config', ok, '--check', '--log-format', 'json'], { encoding: 'utf8', timeout: 30000 });
  t.is(check.status, 0);
  t.like(JSON.parse(check.stderr.trim()), { event: 'config_valid', servers: 1 });
  const usage = spawnSync(process.execPath, [BIN], { encoding: 'utf8', timeout: 30000 });
  t.is(usage.status, 2);
  t.regex(usage.stderr, /usage: ringio-proxy --config FILE/);
});

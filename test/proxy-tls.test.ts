/**
 * ringio-proxy's TLS on the driver under test: `tls = [{ cert, key, names }]` on an http server (files
 * relative to the config), checked with curl (--cacert, SNI through --resolve: each name gets its own
 * certificate) and node:https (X-Forwarded-Proto: https reaches the upstream); https:// upstreams with
 * tls_ca, tls_verify = false, and a certificate the proxy cannot verify (502); a reload that reads new
 * certificate files; and config errors that name the key and its line.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { promisify } from 'node:util';
import { parseConfig } from '@ringio/proxy';
import { freePort, proxyTest, startProxy, tempDir } from './proxy-helpers.js';
import { makeCert, opensslMissing, type Pem } from './tls-helpers.js';

const exec = promisify(execFile);
const curlMissing: string | null = await exec('curl', ['--version']).then(
  () => null,
  () => 'curl is not installed',
);
const missing = opensslMissing ?? curlMissing;

/** curl GET with --cacert and --resolve; resolves [exit code, body]. */
async function curl(name: string, port: number, path: string, cacert: string): Promise<[number, string]> {
  try {
    const { stdout } = await exec('curl', ['-sS', '--max-time', '10', '--cacert', cacert, '--resolve', `${name}:${port}:127.0.0.1`, `https://${name}:${port}${path}`]);
    return [0, stdout];
  } catch (e) {
    return [(e as { code?: number }).code ?? -1, String((e as { stderr?: string }).stderr ?? '')];
  }
}

function httpsGet(port: number, path: string, servername: string, ca: Pem): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path, servername, ca: ca.cert, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

function tlsProxyTest(title: string, fn: Parameters<typeof proxyTest>[1]): void {
  if (missing !== null) {
    proxyTest(`${title} [skipped: ${missing}]`, async (t) => {
      t.pass();
    });
    return;
  }
  proxyTest(title, fn);
}

tlsProxyTest('proxy tls: SNI picks each certificate (curl, node:https), https upstreams with tls_ca / tls_verify, new certificates on reload', async (t) => {
  const A = makeCert(['a.test']);
  const B = makeCert(['b.test']);
  const U = makeCert(['upstream.test']);
  const seen: string[] = [];
  const plain = http.createServer((req, res) => {
    seen.push(String(req.headers['x-forwarded-proto']));
    res.end(`plain ${req.url}`);
  });
  const secure = https.createServer({ cert: U.cert, key: U.key }, (req, res) => res.end(`secure ${req.url}`));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
  const pp = (plain.address() as net.AddressInfo).port;
  const sp = (secure.address() as net.AddressInfo).port;
  const d = tempDir();
  for (const [n, c] of [['a', A], ['b', B], ['u', U]] as const) {
    d.file(`${n}.pem`, c.cert.toString());
    d.file(`${n}-key.pem`, c.key.toString());
  }
  const port = await freePort();
  const file = d.file(
    'proxy.toml',
    `[servers.web]
listen = "127.0.0.1:${port}"
protocol = "http"
tls = [{ cert = "a.pem", key = "a-key.pem" }, { cert = "b.pem", key = "b-key.pem", names = ["b.test"] }]
[[servers.web.routes]]
path = "/"
upstreams = [{ url = "http://127.0.0.1:${pp}" }]
[[servers.web.routes]]
path = "/secure/"
upstreams = [{ url = "https://127.0.0.1:${sp}", tls_ca = "u.pem", tls_servername = "upstream.test" }]
[[servers.web.routes]]
path = "/insecure/"
upstreams = [{ url = "https://localhost:${sp}", tls_verify = false }]
[[servers.web.routes]]
path = "/unverified/"
upstreams = [{ url = "https://localhost:${sp}" }]
`,
  );
  const p = await startProxy(file);
  try {
    t.deepEqual(await curl('a.test', port, '/x', `${d.dir}/a.pem`), [0, 'plain /x']);
    t.deepEqual(await curl('b.test', port, '/y', `${d.dir}/b.pem`), [0, 'plain /y']);
    t.is((await curl('b.test', port, '/', `${d.dir}/a.pem`))[0], 60, 'b.test is not served a.test\'s certificate');
    t.deepEqual(await httpsGet(port, '/n', 'a.test', A), { status: 200, body: 'plain /n' });
    t.true(seen.every((s) => s === 'https'), seen.join());
    t.deepEqual(await curl('a.test', port, '/secure/1', `${d.dir}/a.pem`), [0, 'secure /secure/1']);
    t.deepEqual(await curl('a.test', port, '/insecure/2', `${d.dir}/a.pem`), [0, 'secure /insecure/2']);
    t.is((await httpsGet(port, '/unverified/3', 'a.test', A)).status, 502, 'an upstream certificate the proxy cannot verify is a 502');
    // New certificate files, then a reload: new handshakes get the new certificate.
    const A2 = makeCert(['a.test']);
    d.file('a.pem', A2.cert.toString());
    d.file('a-key.pem', A2.key.toString());
    d.file('a2.pem', A2.cert.toString());
    p.child.kill('SIGHUP');
    await p.waitFor('reloaded', 20000, (l) => l.generation === 2);
    t.deepEqual(await curl('a.test', port, '/z', `${d.dir}/a2.pem`), [0, 'plain /z']);
    t.is((await curl('a.test', port, '/z', `${d.dir}/b.pem`))[0], 60);
    t.deepEqual(await curl('b.test', port, '/w', `${d.dir}/b.pem`), [0, 'plain /w']);
  } finally {
    const { code } = await p.stop();
    t.is(code, 0, p.stderr);
    plain.close();
    secure.close();
    d.cleanup();
  }
});

tlsProxyTest('proxy tls config: files resolve from the config directory; a wrong key, a missing file, tls on tcp name the key and line', async (t) => {
  const A = makeCert(['a.test']);
  const B = makeCert(['b.test']);
  const d = tempDir();
  d.file('a.pem', A.cert.toString());
  d.file('a-key.pem', A.key.toString());
  d.file('b-key.pem', B.key.toString());
  const conf = (tls: string, protocol = 'http'): string =>
    `[servers.web]\nlisten = "127.0.0.1:1"\nprotocol = "${protocol}"\n${tls}\n` +
    (protocol === 'http' ? '[[servers.web.routes]]\nupstreams = [{ url = "http://127.0.0.1:2" }]\n' : 'upstreams = [{ addr = "127.0.0.1:2" }]\n');
  const file = `${d.dir}/proxy.toml`;
  const ok = parseConfig(conf('tls = { cert = "a.pem", key = "a-key.pem" }'), file);
  t.is(ok.servers.web!.tls![0]!.certFile, `${d.dir}/a.pem`);
  t.is(ok.servers.web!.tls![0]!.cert, A.cert.toString());
  t.throws(() => parseConfig(conf('tls = { cert = "a.pem", key = "b-key.pem" }'), file), { message: /proxy\.toml:4: servers\.web\.tls\.key: .*b-key\.pem is not the private key of/, code: 'ERR_RINGIO_CONFIG' });
  t.throws(() => parseConfig(conf('tls = [{ cert = "a.pem", key = "a-key.pem" }, { cert = "nope.pem", key = "a-key.pem" }]'), file), { message: /proxy\.toml:4: servers\.web\.tls\[1\]\.cert: cannot read .*nope\.pem: ENOENT/ });
  t.throws(() => parseConfig(conf('tls = { cert = "a.pem" }'), file), { message: /servers\.web\.tls: needs key/ });
  t.throws(() => parseConfig(conf('tls = { cert = "a.pem", key = "a-key.pem", names = ["bad name"] }'), file), { message: /servers\.web\.tls\.names\[0\]/ });
  t.throws(() => parseConfig(conf('tls = { cert = "a.pem", key = "a-key.pem" }', 'tcp'), file), { message: /servers\.web\.tls: is only for protocol = "http"/ });
  t.throws(() => parseConfig(`[servers.web]\nlisten = "127.0.0.1:1"\nprotocol = "http"\n[[servers.web.routes]]\nupstreams = [{ url = "http://127.0.0.1:2", tls_verify = false }]\n`, file), { message: /tls_verify: is only for https:\/\/ upstreams/ });
  d.cleanup();
});

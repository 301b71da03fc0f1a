/**
 * Certificates for the TLS tests, made at test time with openssl: a self-signed certificate per call with
 * the given DNS names (and 127.0.0.1), so that a client trusting one certificate as its CA accepts
 * exactly that certificate. Without openssl, `missing` says why (the tests skip with it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its key, PEM. */
export interface Pem {
  cert: Buffer;
  key: Buffer;
}

/** Why openssl cannot make certificates here, or null. */
export const opensslMissing: string | null = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'openssl is not installed';
  }
})();

/** A self-signed EC certificate for `names` (CN = the first) and IP 127.0.0.1, valid `days` (default 2). */
export function makeCert(names: string[], days = 2): Pem {
  const dir = mkdtempSync(join(tmpdir(), 'ringio-tls-'));
  try {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const san = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
        '-days', String(days), '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${san}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { cert: readFileSync(cert), key: readFileSync(key) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The end of a listenSecure test: the client's agent, the listener and the server's connections go, then
 * a pause so the closes finish (the caller checks tlsCounts() after it).
 */
export async function closeSecure(agent: { destroy(): void }, l: { close(): Promise<void> }, server: { closeAllConnections(): void }): Promise<void> {
  agent.destroy();
  await l.close();
  server.closeAllConnections();
  await new Promise((r) => setTimeout(r, 100));
}

/**
 * The addon's TLS entry points (addon/tls.cc) for @ringio/net's TlsStream: contexts and sessions named by
 * ids, and results unpacked from the one number each hot call returns (one boundary crossing per batch).
 */
import { native, type NativeTlsContextOptions } from './addon.js';

export type { NativeTlsContextOptions };

/** A packed result's flag: the handshake is complete. */
export const TLS_HANDSHAKE_DONE = 1;
/** A packed result's flag: the peer sent close_notify. */
export const TLS_PEER_CLOSED = 2;
/** A packed result's flag: more plaintext may be waiting (the output window filled up). */
export const TLS_MORE = 4;

/** The largest output window one call may fill (2^25 - 1 bytes). */
export const TLS_MAX_WINDOW = (1 << 25) - 1;

/** A packed result: `n` bytes in the output window, ciphertext `pending` to take, and the flags. */
export interface TlsResult {
  /** Bytes put in the output window. */
  n: number;
  /** Ciphertext bytes still waiting in the session's write BIO (take them). */
  pending: number;
  /** TLS_HANDSHAKE_DONE, TLS_PEER_CLOSED, TLS_MORE. */
  flags: number;
}

function unpack(v: number, out: TlsResult): boolean {
  if (v < 0) return false;
  out.flags = v & 7;
  out.n = Math.floor(v / 8) % 33554432;
  out.pending = Math.floor(v / 268435456);
  return true;
}

/**
 * Thin typed calls into addon/tls.cc. Each call that moves bytes fills `out` and returns false when the
 * session failed (details from error()). Handles belong to this thread's addon instance.
 */
export const tlsNative = {
  /** A new SSL_CTX; throws a TypeError or an Error with an ERR_OSSL_* code for bad PEM. */
  contextNew(opts: NativeTlsContextOptions): number {
    return native.ringio_tls_ctx_new(opts);
  },
  /** Connections to `parent` asking for `name` (or a name under '*.suffix') get `child`'s certificate. */
  contextSni(parent: number, child: number, name: string): void {
    native.ringio_tls_ctx_sni(parent, child, name);
  },
  /** Frees a context (sessions using it keep it until they are freed). */
  contextFree(id: number): void {
    native.ringio_tls_ctx_free(id);
  },
  /** A new session on ctx; for clients, the SNI name to send and the host to verify. */
  sessionNew(ctx: number, servername?: string, checkHost?: string): number {
    return native.ringio_tls_new(ctx, servername, checkHost);
  },
  /** Frees a session (its SSL and BIOs). */
  sessionFree(id: number): void {
    native.ringio_tls_free(id);
  },
  /** Feeds ciphertext (or none), advances the handshake, decrypts into out's window. */
  read(id: number, cin: Uint8Array | null, cinOff: number, cinLen: number, out: Uint8Array, outOff: number, outLen: number, res: TlsResult): boolean {
    return unpack(native.ringio_tls_read(id, cin, cinOff, cinLen, out, outOff, outLen), res);
  },
  /** Encrypts the plaintext window whole; as much ciphertext as fits goes into out's window. */
  write(id: number, plain: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, outLen: number, res: TlsResult): boolean {
    return unpack(native.ringio_tls_write(id, plain, off, len, out, outOff, outLen), res);
  },
  /** Takes waiting ciphertext (handshake messages, alerts, the rest of a write) into out's window. */
  take(id: number, out: Uint8Array, off: number, len: number, res: TlsResult): boolean {
    return unpack(native.ringio_tls_take(id, out, off, len), res);
  },
  /** Queues close_notify. */
  shutdown(id: number, res: TlsResult): boolean {
    return unpack(native.ringio_tls_shutdown(id), res);
  },
  /** The session's last failure. */
  error(id: number): { reason?: string; library?: string; verifyCode?: string; verifyMessage?: string } {
    return native.ringio_tls_error(id);
  },
  /** Protocol, cipher, ALPN, SNI name and the peer certificate's verification result. */
  info(id: number): { protocol?: string; cipher?: string; alpn?: string | null; servername?: string | null; verifyCode?: string | null } {
    return native.ringio_tls_info(id);
  },
  /** [contexts, sessions] alive on this thread. */
  counts(): [number, number] {
    return native.ringio_tls_counts();
  },
};

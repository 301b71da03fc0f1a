/**
 * @ringio/http: a closed connection's objects die young. The server keeps its live connections (and TLS
 * handshakes under way) for close() and its timeouts; with a long-lived Set that bookkeeping kept every
 * closed connection's objects (its Conn, parser, request, response, stream) through V8's scavenges:
 * 6-7% of what the young generation allocated was promoted, against under 1% with a LiveList.
 */
import { gcSurvival, rtTest } from './helpers.js';

rtTest('the HTTP server under new connections: closed connections are not promoted to old space', (t) => gcSurvival(t, 'http', 6000, 3), 120_000);

/**
 * compat: a closed connection's objects die young. toDuplex keeps each runtime's live Duplexes for its
 * shutdown (rule 6 of to-duplex.ts); that bookkeeping must not keep closed ones alive through V8's
 * scavenges (rule 9). With a long-lived Set, each rehash of its (old) table linked it to the next (young)
 * table, and a scavenge kept everything such a chain reached: each connection's whole object graph
 * (the Duplex, node:http's parser and messages, the stream) was promoted to old space and waited there for
 * a full GC: 10-14% of what the young generation allocated, against 0.1% without it.
 */
import { gcSurvival, rtTest } from './helpers.js';

rtTest('toDuplex under node:http: closed connections are not promoted to old space (no bookkeeping keeps them through scavenges)', (t) => gcSurvival(t, 'compat', 6000, 6), 120_000);

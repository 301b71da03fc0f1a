/**
 * @ringio/http: an HTTP/1.1 server and client that parse straight from ringio's rented read buffers.
 */
export { HttpServer, ServerRequest, ServerResponse, type ServeOptions, type Handler, type HttpServerStats } from './server.js';
export { serve, connectionServer } from './serve.js';
export type { FetchHandler } from './fetch.js';
export { HeaderView } from './headers.js';
export { IncomingBody } from './body.js';
export type { HeadersInit } from './out.js';
// For a proxy's forwarding path (heads copied from parsed bytes): see forward.ts.
export { H_CONTENT_LENGTH, H_DATE, H_HOST, H_TRANSFER_ENCODING, type FieldSink, type FieldWriter, type RawHead } from './out.js';
export type { CallHandle } from './client.js';
import * as forwardFns from './forward.js';
/** Forwarding parsed heads as bytes (what ringio-proxy forwards with): field lines copied by index, raw heads for HttpClient and ServerResponse. */
export const forward = forwardFns;
export type { ForwardRules } from './forward.js';
export { HttpClient, ClientResponse, request, type ClientOptions, type ClientTls, type RequestOptions, type RequestBody } from './client.js';

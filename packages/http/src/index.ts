/**
 * @ringio/http: an HTTP/1.1 server and client that parse straight from ringio's rented read buffers.
 */
export { HttpServer, ServerRequest, ServerResponse, type ServeOptions, type Handler, type HttpServerStats } from './server.js';
export { serve, connectionServer } from './serve.js';
export type { FetchHandler } from './fetch.js';
export { HeaderView } from './headers.js';
export { IncomingBody } from './body.js';
export type { HeadersInit } from './out.js';
export { HttpClient, ClientResponse, request, type ClientOptions, type ClientTls, type RequestOptions, type RequestBody } from './client.js';

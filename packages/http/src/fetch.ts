/**
 * The WHATWG handler: serve(opts, { fetch(request) { return new Response('hi') } }) with Node's global
 * Request and Response. The convenient path, not the fast one: every request builds a Request (URL,
 * Headers, and a ReadableStream when there is a body) and the Response body is read through its stream.
 */
import type { ServerRequest, ServerResponse } from './server.js';

/** A WHATWG handler: takes a Request (Node's global class) and returns a Response, or a promise of one. */
export type FetchHandler = (request: Request) => Response | Promise<Response>;

const NO_BODY = new Set(['GET', 'HEAD']);

function requestOf(req: ServerRequest): Request {
  const target = req.url;
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(target)
    ? target
    : `http://${req.headers.get('host') ?? 'localhost'}${target.startsWith('/') ? target : '/'}`;
  const headers = new Headers();
  for (const [n, v] of req.headers) headers.append(n, v);
  const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers };
  if (!NO_BODY.has(req.method) && !req.body.done) {
    const body = req.body;
    init.body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        const chunk = await body.read();
        // The chunk is a view of the rented read buffer: the stream gets a copy.
        if (chunk === null) ctl.close();
        else ctl.enqueue(new Uint8Array(chunk));
      },
    });
    init.duplex = 'half';
  }
  return new Request(url, init);
}

export function fetchHandler(fetch: FetchHandler): (req: ServerRequest, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const response = await fetch(requestOf(req));
    if (!(response instanceof Response)) throw new TypeError('fetch handler must return a Response');
    const headers: [string, string][] = [];
    response.headers.forEach((v, k) => {
      if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection' && k !== 'set-cookie') headers.push([k, v]);
    });
    for (const c of response.headers.getSetCookie()) headers.push(['set-cookie', c]);
    res.writeHead(response.status, headers);
    if (response.body === null) return res.end();
    const reader = response.body.getReader();
    const first = await reader.read();
    if (first.done) return res.end();
    const second = await reader.read();
    if (second.done) return res.end(first.value);
    await res.write(first.value);
    await res.write(second.value);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await res.write(value);
    }
    await res.end();
  };
}

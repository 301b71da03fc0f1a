// @ringio/http from its tarball: a server and a client on loopback, a keep-alive GET and a POST.
import { start } from '@ringio/runtime';
import { serve, HttpClient } from '@ringio/http';

const result = await start(async () => {
  const server = await serve({ host: '127.0.0.1', port: 0 }, async (req, res) => {
    if (req.method === 'POST') return res.end(`got ${(await req.bytes()).length} bytes`);
    res.writeHead(200, { 'content-type': 'text/plain' });
    await res.end(`hello ${req.url}`);
  });
  const client = new HttpClient();
  const { port } = server.address;
  const origin = `http://127.0.0.1:${port}`;
  const a = await client.request(`${origin}/one`);
  const textA = await a.text();
  const b = await client.request(`${origin}/`, { method: 'POST', body: 'x'.repeat(1000) });
  const textB = await b.text();
  await client.close();
  await server.close();
  if (a.status !== 200 || textA !== 'hello /one') throw new Error(`GET answered ${a.status} ${textA}`);
  if (textB !== 'got 1000 bytes') throw new Error(`POST answered ${textB}`);
  return `${textA}; ${textB}`;
});
console.log(`ok http: ${result}`);

/**
 * @ringio/compat: node:stream Duplex over rented-buffer streams (toDuplex), so node:http, node:tls and
 * stream.pipeline run on ringio sockets, and the rented-buffer API over any Duplex (fromDuplex), so
 * ringio code can use node:tls sockets or any other Node stream; and connect/createConnection, client
 * sockets returned at once as net.connect's, for node:http's Agent, ws, pg, undici (connector()) and others.
 */
export {
  toDuplex,
  SocketDuplex,
  type ToDuplexOptions,
  type DuplexSource,
  type DuplexReadSource,
  type DuplexWriteSource,
} from './to-duplex.js';
export { fromDuplex, RentedDuplex } from './from-duplex.js';
export {
  connect,
  createConnection,
  connector,
  Socket,
  type SocketOptions,
  type ConnectOptions,
  type Connector,
  type ConnectorOptions,
  type ConnectorParams,
} from './connect.js';
export { toNetSocket, type NetSocketOptions, type HandOverSource } from './net-socket.js';
export { listenSecure, type SecureListenOptions, type SecureListener, type ConnectionTarget } from './secure.js';
// The guard against node's JSStreamSocket write-after-shutdown assertion: installed on the first Duplex (js-stream-guard.ts).
export { jsStreamGuard } from './js-stream-guard.js';

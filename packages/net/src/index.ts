/**
 * @ringio/net: TCP, Unix and UDP sockets with rented buffers, on the runtime's io_uring or epoll driver.
 */
export { TcpListener, TcpStream, type TcpListenOptions, type TcpConnectOptions } from './tcp.js';
export { UnixListener, UnixStream, type UnixListenOptions } from './unix.js';
export { UdpSocket, UnixDatagram, type UdpBindOptions } from './datagram.js';
export { SocketStream, type ReadHalf, type WriteHalf, type ReadOptions, type WriteOptions, type SendOptions, type ReadLeasesOptions } from './stream.js';
export { copy, copyBidirectional, spliceCopy, spliceOnce, type CopyOptions, type SpliceCopyOptions } from './copy.js';
export { parseAddr, type AddrInput, type SocketAddr } from './addr.js';
export { AcceptOp } from './ops/accept.js';
export { MultishotAcceptOp } from './ops/accept-multi.js';
export { ConnectOp } from './ops/connect.js';
export { RecvOp } from './ops/recv.js';
export { RecvSelectOp, type PooledReadSink } from './ops/recv-select.js';
export { RecvMultishotOp } from './ops/recv-multi.js';
export { SendOp } from './ops/send.js';
export { SendZcOp } from './ops/send-zc.js';
export { SendAllOp } from './ops/send-all.js';
export { SendQueuedOp, type SendSink } from './ops/send-queued.js';
export { ReadvOp } from './ops/readv.js';
export { WritevOp } from './ops/writev.js';
export { RecvmsgOp } from './ops/recvmsg.js';
export { SendmsgOp } from './ops/sendmsg.js';
export { ShutdownOp } from './ops/shutdown.js';
export { SpliceOp } from './ops/splice.js';
export {
  TlsContext,
  TlsStream,
  tlsCounts,
  type TlsCertificate,
  type TlsServerOptions,
  type TlsClientOptions,
  type TlsAcceptOptions,
  type TlsConnectOptions,
  type TlsInfo,
  type PemInput,
  type ByteStream,
} from './tls.js';

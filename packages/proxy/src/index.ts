/**
 * @ringio/proxy: the ringio-proxy program's parts, for embedding and tests: the config parser, the L4
 * TCP proxy service and its chain factory, the balancer, PROXY protocol headers and metrics.
 */
export { parseConfig, loadConfig, locateKey, parseEndpoint, listenKey, ConfigError, BALANCES } from './config.js';
export type { ProxyConfig, ServerConfig, UpstreamConfig, Endpoint, Balance } from './config.js';
export { Balancer, Upstream } from './balance.js';
export { proxyV1, proxyV2, type PeerInfo } from './proxy-protocol.js';
export { TcpProxy, Conn, ByteCounters, tcpProxyFactory, tcpServerFactory, type ConnResult } from './tcp-proxy.js';
export { ProxyThread, type ServerData, type ServerStats, type ProxyShared } from './thread.js';
export { proxyThread } from './entry.js';
export { AcceptLoop } from './accept.js';
export { renderMetrics, type ThreadStats, type ProcessStats } from './metrics.js';
export { main, parseArgs, type CliArgs } from './cli.js';
export { HttpProxy, Router, UpstreamPool, httpProxyFactory, httpServerFactory, findHttpProxy } from './http-proxy.js';

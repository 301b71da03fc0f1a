/**
 * What every ringio socket shares: the runtime's FdHandle (one owned fd, ops in flight tracked so that
 * close() cancels them and waits for the kernel before closing the fd).
 */
import { FdHandle } from '@ringio/runtime';

export class SocketBase extends FdHandle {}

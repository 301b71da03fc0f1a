/**
 * What every ringio socket shares: the runtime's FdHandle (one owned fd, ops in flight tracked so that
 * close() cancels them and waits for the kernel before closing the fd).
 */
import { FdHandle } from '@ringio/runtime';

export class SocketBase extends FdHandle {
  /** Sockets come from bind(), connect(), accept() and pair(): the constructor is not public API. */
  protected constructor(fd: number) {
    super(fd);
  }

  /** A socket's close(2) never blocks (no SO_LINGER is set here): closed at once once nothing is in flight. */
  protected override get closesInline(): boolean {
    return true;
  }
}

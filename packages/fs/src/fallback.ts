/**
 * Degrading when the io_uring kernel lacks a file opcode: the runtime probes optional opcodes at start
 * (`op:NAME` in stats().features, read through hasFeature); a missing one is served by node:fs on libuv's thread pool instead,
 * with the same result and errors. The epoll driver lists every file op too (its pool runs the syscall).
 */
import { ftruncate as nodeFtruncate, mkdir as nodeMkdir, rename as nodeRename, rmdir as nodeRmdir, symlink as nodeSymlink, unlink as nodeUnlink } from 'node:fs';
import { hasFeature, type OptionalOp } from '@ringio/runtime';

/** True when the driver can run IORING_OP_<name>: both drivers list what they run as op:NAME. */
export function hasOp(name: OptionalOp): boolean {
  return hasFeature(`op:${name}`);
}

function cb(resolve: () => void, reject: (e: unknown) => void) {
  return (err: NodeJS.ErrnoException | null): void => (err ? reject(err) : resolve());
}

export const fsFallback = {
  ftruncate: (fd: number, len: number | bigint, path: string): Promise<void> =>
    new Promise((resolve, reject) =>
      nodeFtruncate(fd, Number(len), (err) => {
        if (err) {
          (err as NodeJS.ErrnoException & { path?: string }).path = path;
          reject(err);
        } else resolve();
      }),
    ),
  mkdir: (path: string, mode: number): Promise<void> => new Promise((res, rej) => nodeMkdir(path, { mode }, cb(res, rej))),
  unlink: (path: string): Promise<void> => new Promise((res, rej) => nodeUnlink(path, cb(res, rej))),
  rmdir: (path: string): Promise<void> => new Promise((res, rej) => nodeRmdir(path, cb(res, rej))),
  rename: (from: string, to: string): Promise<void> => new Promise((res, rej) => nodeRename(from, to, cb(res, rej))),
  symlink: (target: string, path: string): Promise<void> => new Promise((res, rej) => nodeSymlink(target, path, cb(res, rej))),
};

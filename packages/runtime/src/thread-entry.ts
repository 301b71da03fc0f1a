/**
 * The script every worker thread of a start() group runs first (threads/group.ts): it makes this
 * thread a member, then imports the user's module to find main.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runThread } from './start.js';
import { becomeMember } from './threads/group.js';

const data = (workerData as { ringio?: Parameters<typeof becomeMember>[0] } | null)?.ringio;
if (data === undefined || parentPort === null) {
  throw new Error('@ringio/runtime thread-entry is started by start({ threads }) only');
}
becomeMember(data, parentPort, runThread);

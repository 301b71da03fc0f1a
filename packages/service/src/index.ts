/**
 * @ringio/service: services, layers and factories (Monolake's service model), per-thread slots that
 * hold the current chain, and two-phase deploys of new chains across threads.
 */
export {
  stack,
  stackFactory,
  constFactory,
  wrapFactory,
  findOld,
  optionalFactory,
  type Service,
  type Layer,
  type Factory,
  type FactoryLayer,
  type Wrapper,
} from './service.js';
export { Slot } from './slot.js';
export { buildFactory, checkFactorySpec, type FactorySpec, type FactoryMaker } from './spec.js';
export {
  deployPlane,
  serveDeploys,
  Deployer,
  ChainRegistry,
  deployError,
  type DeployPlane,
  type DeployTarget,
  type DeployReport,
  type ThreadReport,
  type DeployOptions,
  type Change,
  type ChainRegistryHooks,
} from './deploy.js';
export { TimeoutService, timeoutLayer, timeoutFactory } from './layers/timeout.js';
export { ConcurrencyLimit, Permits, SharedPermits, concurrencyLimitLayer, concurrencyLimitFactory, type PermitCounter } from './layers/concurrency.js';
export { CatchErrors, catchErrorsLayer, catchErrorsFactory } from './layers/catch-errors.js';
export { AccessLog, accessLogLayer, accessLogFactory, type AccessLogEntry, type AccessLogOptions } from './layers/access-log.js';
export { StatsService, Counters, sumCounters, statsLayer, statsFactory, type CountersSnapshot } from './layers/stats.js';

// @ringio/service from its tarball: a chain built, called, rebuilt with its state carried over.
import { stackFactory, statsFactory, catchErrorsFactory, findOld } from '@ringio/service';

class Hello {
  calls = 0;
  call(name) {
    this.calls++;
    if (name === 'bad') throw new Error('bad name');
    return `hello ${name}`;
  }
}
const factory = stackFactory(
  { make: (old) => findOld(old, (s) => s instanceof Hello) ?? new Hello() },
  statsFactory(),
  catchErrorsFactory((err) => `error: ${err.message}`),
);
const v1 = await factory.make();
if ((await v1.call('a')) !== 'hello a') throw new Error('v1 answered wrong');
if ((await v1.call('bad')) !== 'error: bad name') throw new Error('catch-errors did not answer');
const v2 = await factory.make(v1);
if (v2 === v1) throw new Error('make(old) returned the old chain');
await v2.call('b');
const hello = findOld(v2, (s) => s instanceof Hello);
if (hello?.calls !== 3) throw new Error(`state was not carried over: ${hello?.calls} calls`);
console.log('ok service: a chain rebuilt with its state carried over (3 calls)');

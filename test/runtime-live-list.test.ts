/**
 * LiveList (@ringio/runtime): the bookkeeping list that lets removed values die young. Its order, size,
 * removal from any place, a second removal doing nothing, a node of another list refused, removal while
 * walking, draining with shift(), and a removed node keeping nothing.
 */
import test from 'ava';
import { LiveList, type LiveNode } from '@ringio/runtime';

test('add, remove from the head, the middle and the tail; size and order (newest first)', (t) => {
  const l = new LiveList<string>();
  const nodes = ['a', 'b', 'c', 'd', 'e'].map((v) => l.add(v));
  t.is(l.size, 5);
  t.deepEqual(l.values(), ['e', 'd', 'c', 'b', 'a']);
  t.true(l.remove(nodes[2]!)); // middle
  t.true(nodes[4]!.leave()); // head
  t.true(l.remove(nodes[0]!)); // tail
  t.is(l.size, 2);
  t.deepEqual(l.values(), ['d', 'b']);
  const again = l.add('f');
  t.deepEqual(l.values(), ['f', 'd', 'b']);
  t.is(again.value, 'f');
});

test('a second removal, or a node of another list, does nothing', (t) => {
  const l = new LiveList<number>();
  const other = new LiveList<number>();
  const n = l.add(1);
  const m = other.add(2);
  t.false(l.remove(m), 'another list’s node');
  t.is(other.size, 1);
  t.true(n.leave());
  t.false(n.leave(), 'left already');
  t.false(l.remove(n), 'left already');
  t.is(l.size, 0);
  t.deepEqual(l.values(), []);
  t.deepEqual(other.values(), [2]);
});

test('a removed node holds nothing: its value and links are cleared', (t) => {
  const l = new LiveList<object>();
  const a = l.add({ a: 1 });
  const b = l.add({ b: 2 });
  const c = l.add({ c: 3 });
  b.leave();
  t.is(b.value, undefined);
  const inner = b as unknown as LiveNode<object> & { _prev: unknown; _next: unknown; _list: unknown };
  t.is(inner._prev, undefined);
  t.is(inner._next, undefined);
  t.is(inner._list, undefined);
  t.deepEqual(l.values(), [{ c: 3 }, { a: 1 }]);
  t.truthy(a.value);
  t.truthy(c.value);
});

test('forEach may remove the value it is given; shift() drains while values remove others', (t) => {
  const l = new LiveList<number>();
  const nodes = new Map<number, LiveNode<number>>();
  for (let i = 0; i < 10; i++) nodes.set(i, l.add(i));
  const seen: number[] = [];
  l.forEach((v) => {
    seen.push(v);
    if (v % 2 === 0) nodes.get(v)!.leave();
  });
  t.deepEqual(seen, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  t.deepEqual(l.values(), [9, 7, 5, 3, 1]);
  // Draining: each value taken off also removes the next one (as a closing connection may close its pair).
  const drained: number[] = [];
  for (let v = l.shift(); v !== undefined; v = l.shift()) {
    drained.push(v);
    nodes.get(v - 2)?.leave();
  }
  t.deepEqual(drained, [9, 5, 1]);
  t.is(l.size, 0);
  t.is(l.shift(), undefined);
});

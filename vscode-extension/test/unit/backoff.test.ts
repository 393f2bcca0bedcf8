import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, CrashTracker, DEFAULT_POLICY } from '../../src/backoff';

test('backoffDelay doubles from 1 s up to 30 s', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n)),
    [1000, 2000, 4000, 8000, 16000, 30000, 30000],
  );
});

test('CrashTracker: restarts with growing delays, gives up after maxCrashes in a row', () => {
  let now = 0;
  const t = new CrashTracker({ ...DEFAULT_POLICY, maxCrashes: 3 }, () => now);
  const decisions = [];
  for (let i = 0; i < 4; i++) {
    t.started();
    now += 5_000; // crashes after 5 s: not a stable run
    decisions.push(t.crashed());
  }
  assert.deepEqual(decisions, [
    { restart: true, delayMs: 1000, crashes: 1 },
    { restart: true, delayMs: 2000, crashes: 2 },
    { restart: true, delayMs: 4000, crashes: 3 },
    { restart: false, crashes: 4 },
  ]);
});

test('CrashTracker: a stable run resets the count; so does reset()', () => {
  let now = 0;
  const t = new CrashTracker(DEFAULT_POLICY, () => now);
  t.started();
  now += 1000;
  t.crashed();
  t.started();
  now += 1000;
  assert.equal(t.crashed().crashes, 2);
  t.started();
  now += DEFAULT_POLICY.stableMs;
  assert.deepEqual(t.crashed(), { restart: true, delayMs: 1000, crashes: 1 });
  t.crashed();
  t.reset();
  assert.equal(t.crashed().crashes, 1);
});

test('CrashTracker: crashes without a start in between (failed restarts) keep counting', () => {
  const t = new CrashTracker(DEFAULT_POLICY, () => 0);
  assert.equal(t.crashed().crashes, 1);
  assert.equal(t.crashed().crashes, 2);
});

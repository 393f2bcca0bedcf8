import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServerProcess } from '../../src/process';
import type { Launch } from '../../src/settings';

function node(code: string): Launch {
  return { command: process.execPath, args: ['-e', code], source: 'semcode.serverCommand' };
}

test('a process that fails at once: exit status and its last stderr lines', async () => {
  const logs: string[] = [];
  const p = await ServerProcess.spawn(
    node('console.error("one\\n\\ntwo"); console.error("No module named lsp_server"); process.exit(3)'),
    undefined,
    (m) => logs.push(m),
  );
  assert.equal(await p.exited, 'exit code 3');
  assert.equal(p.running, false);
  assert.deepEqual(p.lastLines(2), ['two', 'No module named lsp_server']);
  await new Promise((r) => setImmediate(r));
  assert.match(logs.join('\n'), /ended \(exit code 3\)/);
});

test('a command that does not exist: spawn rejects with the reason', async () => {
  const launch: Launch = { command: '/nonexistent/semcode', args: ['lsp'], source: 'semcode.serverCommand' };
  await assert.rejects(
    ServerProcess.spawn(launch, undefined, () => undefined),
    /cannot run \/nonexistent\/semcode: .*ENOENT/,
  );
});

test('end(): waits for a voluntary exit, else terminates', async () => {
  const quick = await ServerProcess.spawn(node('setTimeout(() => {}, 50)'), undefined, () => undefined);
  await quick.end(5000);
  assert.equal(await quick.exited, 'exit code 0');
  const stuck = await ServerProcess.spawn(node('setInterval(() => {}, 1000)'), undefined, () => undefined);
  assert.equal(await stuck.waitForExit(50), undefined);
  await stuck.end(50);
  assert.equal(await stuck.exited, 'killed by SIGTERM');
});

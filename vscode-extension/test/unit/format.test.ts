import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  hitToItem,
  kindIcon,
  previewLine,
  relativePath,
  searchTitle,
  statusBarText,
  statusDetails,
  statusSummary,
} from '../../src/format';
import type { Hit, Status } from '../../src/protocol';

const ws = [{ uri: 'file:///work/my%20repo', name: 'my repo' }];

function hit(over: Partial<Hit> = {}): Hit {
  return {
    uri: 'file:///work/my%20repo/src/geometry.py',
    range: { start: { line: 5, character: 0 }, end: { line: 7, character: 30 } },
    relevance: 0.42,
    score: 0.03,
    symbol: 'circle_area',
    kind: 'function',
    language: 'python',
    preview: 'def circle_area(radius):\n    """Area."""\n    return math.pi * radius * radius',
    reasons: ['semantic', 'lexical'],
    ...over,
  };
}

test('hitToItem: icon + symbol, path:line (1-based), first preview line and the signals that placed it', () => {
  assert.deepEqual(hitToItem(hit(), ws), {
    label: '$(symbol-function) circle_area',
    description: 'src/geometry.py:6',
    detail: 'def circle_area(radius):  (semantic + lexical)',
  });
  const ranked = hitToItem(hit({ reasons: ['lexical', 'definition', 'path', 'file:3'] }), ws);
  assert.equal(ranked.detail, 'def circle_area(radius):  (lexical + definition + path + file:3)');
});

test('hitToItem: an unnamed block is labelled by its preview', () => {
  const item = hitToItem(hit({ symbol: '', kind: 'block', preview: '\n  import   math\nimport os' }), ws);
  assert.deepEqual(item, {
    label: '$(symbol-namespace) import math',
    description: 'src/geometry.py:6',
    detail: '(semantic + lexical)',
  });
  const empty = hitToItem(hit({ symbol: '', kind: 'text', preview: '' }), ws);
  assert.equal(empty.label, '$(symbol-file) src/geometry.py:6');
});

test('kindIcon: unknown kinds get a generic icon', () => {
  assert.equal(kindIcon('method'), '$(symbol-method)');
  assert.equal(kindIcon('impl'), '$(symbol-misc)');
});

test('relativePath: one folder, several folders, outside every folder', () => {
  assert.equal(relativePath('file:///work/my%20repo/a/b.py', ws), 'a/b.py');
  assert.equal(relativePath('file:///work/my repo/a/b.py', ws), 'a/b.py');
  const two = [...ws, { uri: 'file:///work/other/', name: 'other' }];
  assert.equal(relativePath('file:///work/other/x.go', two), 'other/x.go');
  assert.equal(relativePath('file:///work/my%20repository/x.py', ws), '/work/my repository/x.py');
});

test('previewLine: cut long lines', () => {
  assert.equal(previewLine('x'.repeat(200), 10), 'xxxxxxxxx…');
  assert.equal(previewLine('', 10), '');
});

test('statusBarText: every phase', () => {
  const index = { state: 'ready' as const, files: 4, chunks: 16, pending: 0 };
  assert.deepEqual(statusBarText({ phase: 'running', index }), {
    text: '$(search) Semcode',
    tooltip: 'Semcode: ready, 4 files, 16 chunks',
  });
  assert.deepEqual(statusBarText({ phase: 'running', index: { ...index, state: 'indexing', files: 1, pending: 3 } }), {
    text: '$(sync~spin) Semcode: indexing 3 files left',
    tooltip: 'Semcode: indexing (1 file, 16 chunks so far)',
  });
  // phase 2: every file searchable by text, vectors being filled in
  assert.deepEqual(statusBarText({ phase: 'running', index: { ...index, state: 'indexing', embedded: 0.829 } }), {
    text: '$(sync~spin) Semcode: embedding 82%',
    tooltip: 'Semcode: every file is searchable by text (4 files, 16 chunks); semantic search covers 82% so far',
  });
  assert.equal(
    statusBarText({ phase: 'running', index: { ...index, state: 'error' }, lastError: 'no model' }).tooltip,
    'Semcode: no model',
  );
  assert.equal(statusBarText({ phase: 'running' }).text, '$(sync~spin) Semcode');
  assert.equal(statusBarText({ phase: 'starting' }).tooltip, 'Semcode: starting the server');
  assert.equal(
    statusBarText({ phase: 'restarting', delayMs: 2000, crashes: 2 }).tooltip,
    'Semcode: the server stopped (2 times); restarting in 2 s',
  );
  assert.deepEqual(statusBarText({ phase: 'failed', message: 'not found' }), {
    text: '$(error) Semcode',
    tooltip: 'Semcode is not running: not found',
  });
  assert.equal(statusBarText({ phase: 'idle' }).text, '$(search) Semcode');
});

const status: Status = {
  state: 'ready',
  files: 4,
  chunks: 16,
  pending: 0,
  skipped: 1,
  model: '/models/tiny',
  device: 'cpu',
  indexDir: '/tmp/idx',
  workspaces: [
    { root: '/work/ws', state: 'ready', files: 4, chunks: 16, pending: 0, skipped: 1, indexDir: '/tmp/idx' },
  ],
};

test('statusSummary and statusDetails', () => {
  assert.equal(statusSummary(status), 'Semcode ready: 4 files, 16 chunks; 1 skipped; model /models/tiny; device cpu.');
  assert.equal(
    statusSummary({
      ...status,
      state: 'error',
      model: null,
      device: null,
      skipped: 0,
      lastError: 'no model configured',
    }),
    'Semcode error: 4 files, 16 chunks; model (default). no model configured',
  );
  assert.equal(
    statusDetails(status),
    [
      'state: ready',
      'files: 4, chunks: 16, pending: 0, skipped: 1',
      'model: /models/tiny',
      'device: cpu',
      'index: /tmp/idx',
      'folder /work/ws: ready, 4 files, 16 chunks, 1 skipped',
    ].join('\n'),
  );
});

test('searchTitle: incomplete while indexing, the embedded share while embedding', () => {
  const index = { state: 'ready' as const, files: 4, chunks: 16, pending: 0 };
  assert.equal(searchTitle(index), 'Semcode: Search');
  assert.equal(
    searchTitle({ ...index, state: 'indexing', pending: 2 }),
    'Semcode: Search (indexing: results may be incomplete)',
  );
  assert.equal(
    searchTitle({ ...index, state: 'indexing', embedded: 0.5 }),
    'Semcode: Search (50% embedded: the rest is found by its text)',
  );
});

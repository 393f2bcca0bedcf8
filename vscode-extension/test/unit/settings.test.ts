import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  DEFAULTS,
  Environment,
  expandPath,
  findOnPath,
  initializationOptions,
  isExecutable,
  parseSettings,
  resolveLaunch,
  serverKey,
  Settings,
} from '../../src/settings';

const EXT = path.resolve(__dirname, '../../..');
const REPO = path.resolve(EXT, '..');

function settingsFrom(values: Record<string, unknown>): { settings: Settings; problems: string[] } {
  return parseSettings((key) => values[key]);
}

function env(files: string[], extra: Partial<Environment> = {}): Environment {
  return {
    home: '/home/u',
    workspaceFolder: '/work/ws',
    path: '/usr/local/bin:/usr/bin',
    platform: 'linux',
    isExecutable: (f) => files.includes(f),
    ...extra,
  };
}

test('unset settings give the defaults, with no problems', () => {
  assert.deepEqual(settingsFrom({}), { settings: DEFAULTS, problems: [] });
});

test('valid values are taken, nested keys included', () => {
  const { settings, problems } = settingsFrom({
    model: ' /m ',
    threads: 4,
    exclude: ['build/'],
    'search.mode': 'lexical',
    'related.view': 'peek',
  });
  assert.deepEqual(problems, []);
  assert.equal(settings.model, '/m');
  assert.equal(settings.threads, 4);
  assert.deepEqual(settings.exclude, ['build/']);
  assert.equal(settings.search.mode, 'lexical');
  assert.equal(settings.search.limit, DEFAULTS.search.limit);
  assert.equal(settings.related.view, 'peek');
});

test('each invalid value keeps its default and is reported', () => {
  const cases: [string, unknown][] = [
    ['threads', 0],
    ['threads', 1.5],
    ['threads', '2'],
    ['maxFileSize', -1],
    ['maxFileSize', Number.NaN],
    ['exclude', 'build/'],
    ['include', [1]],
    ['search.mode', 'fuzzy'],
    ['search.limit', 5000],
    ['debounceMs', true],
    ['related.view', 'tree'],
    ['model', 3],
  ];
  for (const [key, value] of cases) {
    const { settings, problems } = settingsFrom({ [key]: value });
    assert.deepEqual(settings, DEFAULTS, key);
    assert.equal(problems.length, 1, key);
    assert.match(problems[0], new RegExp(`^semcode\\.${key.replace('.', '\\.')}: invalid value`));
  }
});

test('the defaults are not shared between parses', () => {
  const a = settingsFrom({}).settings;
  a.exclude.push('x');
  assert.deepEqual(settingsFrom({}).settings.exclude, []);
});

test('expandPath: ~, ${userHome}, ${workspaceFolder}', () => {
  const ctx = { home: '/home/u', workspaceFolder: '/work/ws' };
  assert.equal(expandPath('~/models/m', ctx), '/home/u/models/m');
  assert.equal(expandPath('${userHome}/x', ctx), '/home/u/x');
  assert.equal(expandPath('${workspaceFolder}/.venv/bin/semcode', ctx), '/work/ws/.venv/bin/semcode');
  assert.equal(expandPath('org/model-name', ctx), 'org/model-name');
  assert.equal(expandPath('a~b', ctx), 'a~b');
  assert.equal(expandPath('${workspaceFolder}/x', { home: '/h' }), '${workspaceFolder}/x');
});

test('initializationOptions: camelCase keys, empty strings left out', () => {
  const ctx = { home: '/home/u' };
  assert.deepEqual(initializationOptions(DEFAULTS, ctx), {
    maxFileSize: 2,
    include: [],
    exclude: [],
    threads: 1,
    debounceMs: 300,
  });
  const s = settingsFrom({ model: '~/m', indexDir: '/tmp/idx', device: 'cpu', exclude: ['*.min.js'] }).settings;
  assert.deepEqual(initializationOptions(s, ctx), {
    model: '/home/u/m',
    indexDir: '/tmp/idx',
    device: 'cpu',
    maxFileSize: 2,
    include: [],
    exclude: ['*.min.js'],
    threads: 1,
    debounceMs: 300,
  });
});

test('resolveLaunch: serverCommand, then pythonPath, then semcode on PATH', () => {
  const both = settingsFrom({ serverCommand: '/opt/semcode', pythonPath: '/usr/bin/python3' }).settings;
  assert.deepEqual(resolveLaunch(both, env(['/opt/semcode', '/usr/bin/python3'])), {
    command: '/opt/semcode',
    args: ['lsp'],
    source: 'semcode.serverCommand',
  });
  const python = settingsFrom({ pythonPath: '${workspaceFolder}/.venv/bin/python' }).settings;
  assert.deepEqual(resolveLaunch(python, env(['/work/ws/.venv/bin/python'])), {
    command: '/work/ws/.venv/bin/python',
    args: ['-m', 'lsp_server.cli', 'lsp'],
    source: 'semcode.pythonPath',
  });
  assert.deepEqual(resolveLaunch(DEFAULTS, env(['/usr/bin/semcode'])), {
    command: '/usr/bin/semcode',
    args: ['lsp'],
    source: 'PATH',
  });
  const bare = settingsFrom({ pythonPath: 'python3' }).settings;
  assert.equal((resolveLaunch(bare, env(['/usr/bin/python3'])) as { command: string }).command, '/usr/bin/python3');
});

test('resolveLaunch: a missing command names the setting to fix', () => {
  assert.deepEqual(resolveLaunch(DEFAULTS, env([])), {
    error:
      'The semcode language server was not found on PATH. Install semcode (pip install semcode), or set ' +
      'semcode.serverCommand to its executable or semcode.pythonPath to a Python that has it.',
    setting: 'semcode.serverCommand',
  });
  const cmd = settingsFrom({ serverCommand: '/nope/semcode' }).settings;
  assert.equal((resolveLaunch(cmd, env([])) as { setting: string }).setting, 'semcode.serverCommand');
  const py = settingsFrom({ pythonPath: '/nope/python' }).settings;
  assert.equal((resolveLaunch(py, env([])) as { setting: string }).setting, 'semcode.pythonPath');
});

test('findOnPath: first match in PATH order; Windows extensions', () => {
  assert.equal(findOnPath('semcode', env(['/usr/bin/semcode', '/usr/local/bin/semcode'])), '/usr/local/bin/semcode');
  const win = env(['C:\\py\\Scripts\\semcode.exe'], { platform: 'win32', path: 'C:\\bin;C:\\py\\Scripts' });
  assert.equal(findOnPath('semcode', win), 'C:\\py\\Scripts\\semcode.exe');
});

test('isExecutable: real files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'semcode-settings-'));
  const exe = path.join(dir, 'semcode');
  const plain = path.join(dir, 'plain');
  fs.writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(plain, '', { mode: 0o644 });
  assert.equal(isExecutable(exe), true);
  assert.equal(isExecutable(path.join(dir, 'missing')), false);
  assert.equal(isExecutable(dir), false);
  if (process.platform !== 'win32' && process.getuid?.() !== 0) {
    assert.equal(isExecutable(plain), false); // root may execute any file with an x bit; this has none
  }
  fs.rmSync(dir, { recursive: true });
});

test('serverKey changes with what the server is started with, not with client-only settings', () => {
  const e = env(['/usr/bin/semcode']);
  const base = serverKey(DEFAULTS, e);
  assert.equal(serverKey(settingsFrom({ 'search.limit': 5, 'related.view': 'peek' }).settings, e), base);
  assert.notEqual(serverKey(settingsFrom({ model: '/m' }).settings, e), base);
  assert.notEqual(serverKey(settingsFrom({ threads: 2 }).settings, e), base);
  assert.notEqual(serverKey(DEFAULTS, env(['/usr/local/bin/semcode'])), base);
});

interface ConfigProperty {
  default: unknown;
  enum?: unknown[];
}

const pkg = JSON.parse(fs.readFileSync(path.join(EXT, 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, ConfigProperty> }; commands: { command: string }[] };
  activationEvents: string[];
};
const properties = pkg.contributes.configuration.properties;

test('package.json declares every setting, with the same default as settings.ts', () => {
  const parsed = parseSettings((key) => properties[`semcode.${key}`]?.default).settings;
  assert.deepEqual(parsed, DEFAULTS);
  const declared = Object.keys(properties).filter((k) => k !== 'semcode.trace.server');
  for (const key of declared) {
    const values: Record<string, unknown> = { [key.slice('semcode.'.length)]: properties[key].default };
    assert.deepEqual(parseSettings((k) => values[k]).problems, [], key);
  }
});

test('settings mirror every server option of lsp_server/options.py', () => {
  const source = fs.readFileSync(path.join(REPO, 'lsp_server', 'options.py'), 'utf8');
  const table = source.slice(source.indexOf('_FIELDS'), source.indexOf('}', source.indexOf('_FIELDS')));
  const serverKeys = [...table.matchAll(/^\s+"(\w+)": \(/gm)].map((m) => m[1]);
  assert.ok(serverKeys.length >= 8, `found ${serverKeys.join(', ')}`);
  const optionKeys = Object.keys(
    initializationOptions({ ...DEFAULTS, model: 'm', indexDir: 'i', device: 'cpu' }, { home: '/' }),
  );
  assert.deepEqual([...optionKeys].sort(), [...serverKeys].sort());
  for (const key of serverKeys) {
    assert.ok(properties[`semcode.${key}`], `package.json lacks semcode.${key}`);
  }
});

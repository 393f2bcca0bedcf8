/**
 * The extension's settings (`semcode.*`) as one typed object, and what follows from them: how to launch the
 * server and its `initializationOptions` (lsp_server/options.py). No `vscode` import: the caller passes a getter,
 * so this module is tested in plain Node.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { SEARCH_MODES, SearchMode } from './protocol';

export type RelatedView = 'quickPick' | 'peek';

export interface Settings {
  /** Path of the `semcode` executable, run as `<serverCommand> lsp`; "" = `semcode` on PATH. */
  serverCommand: string;
  /** A Python with semcode installed, run as `<pythonPath> -m lsp_server.cli lsp` when serverCommand is "". */
  pythonPath: string;
  /** Checkpoint folder or hub id; "" = the server's default model. */
  model: string;
  /** LanceDB folder; "" = the user cache dir. */
  indexDir: string;
  maxFileSize: number;
  include: string[];
  exclude: string[];
  /** "cpu", "cuda", ...; "" = the server picks. */
  device: string;
  threads: number;
  debounceMs: number;
  search: { mode: SearchMode; limit: number; delayMs: number };
  related: { limit: number; view: RelatedView };
}

export const DEFAULTS: Settings = {
  serverCommand: '',
  pythonPath: '',
  model: '',
  indexDir: '',
  maxFileSize: 2,
  include: [],
  exclude: [],
  device: '',
  threads: 1,
  debounceMs: 300,
  search: { mode: 'hybrid', limit: 20, delayMs: 150 },
  related: { limit: 20, view: 'quickPick' },
};

/** Reads one setting by its key below `semcode.` ("search.mode"); undefined when unset. */
export type Getter = (key: string) => unknown;

type Check<T> = (v: unknown) => T | undefined;

const str: Check<string> = (v) => (typeof v === 'string' ? v.trim() : v === null ? '' : undefined);
const strList: Check<string[]> = (v) =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? [...v] : undefined;
const positive: Check<number> = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
const intIn =
  (low: number, high: number): Check<number> =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= low && v <= high ? v : undefined;
const oneOf =
  <T extends string>(values: readonly T[]): Check<T> =>
  (v) =>
    values.includes(v as T) ? (v as T) : undefined;

/** Every setting: key below `semcode.` -> its checker. */
const CHECKS: Record<string, Check<unknown>> = {
  serverCommand: str,
  pythonPath: str,
  model: str,
  indexDir: str,
  maxFileSize: positive,
  include: strList,
  exclude: strList,
  device: str,
  threads: intIn(1, 1024),
  debounceMs: intIn(0, 600_000),
  'search.mode': oneOf(SEARCH_MODES),
  'search.limit': intIn(1, 1000),
  'search.delayMs': intIn(0, 10_000),
  'related.limit': intIn(1, 1000),
  'related.view': oneOf<RelatedView>(['quickPick', 'peek']),
};

export const SETTING_KEYS: readonly string[] = Object.keys(CHECKS);

function getPath(obj: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], obj);
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  const last = parts.pop() as string;
  const parent = parts.reduce((o, k) => o[k] as Record<string, unknown>, obj);
  parent[last] = value;
}

/** The settings, and one message per invalid value (which keeps its default). Never throws. */
export function parseSettings(get: Getter): { settings: Settings; problems: string[] } {
  const settings = structuredClone(DEFAULTS) as unknown as Record<string, unknown>;
  const problems: string[] = [];
  for (const [key, check] of Object.entries(CHECKS)) {
    const raw = get(key);
    if (raw === undefined) {
      continue;
    }
    const value = check(raw);
    if (value === undefined) {
      const fallback = JSON.stringify(getPath(DEFAULTS, key));
      problems.push(`semcode.${key}: invalid value ${JSON.stringify(raw)}; using ${fallback}`);
    } else {
      setPath(settings, key, value);
    }
  }
  return { settings: settings as unknown as Settings, problems };
}

/** What paths in settings may refer to. */
export interface PathContext {
  home: string;
  /** The first workspace folder's path, for `${workspaceFolder}`. */
  workspaceFolder?: string;
}

/** `~` and `${workspaceFolder}`, `${userHome}` expanded; "" stays "". */
export function expandPath(value: string, ctx: PathContext): string {
  let out = value.replace(/\$\{userHome\}/g, ctx.home);
  if (ctx.workspaceFolder !== undefined) {
    out = out.replace(/\$\{workspaceFolder\}/g, ctx.workspaceFolder);
  }
  if (out === '~' || out.startsWith('~/')) {
    out = ctx.home + out.slice(1);
  }
  return out;
}

/** The server's `initializationOptions`; unset strings are left out so the server's defaults apply. */
export function initializationOptions(s: Settings, ctx: PathContext): Record<string, unknown> {
  const out: Record<string, unknown> = {
    maxFileSize: s.maxFileSize,
    include: s.include,
    exclude: s.exclude,
    threads: s.threads,
    debounceMs: s.debounceMs,
  };
  if (s.model) {
    // a hub id ("org/name") stays as it is; only something that looks like a path is expanded
    out.model = expandPath(s.model, ctx);
  }
  if (s.indexDir) {
    out.indexDir = expandPath(s.indexDir, ctx);
  }
  if (s.device) {
    out.device = s.device;
  }
  return out;
}

export interface Launch {
  command: string;
  args: string[];
  /** Which setting chose it, for messages ("semcode.pythonPath"). */
  source: 'semcode.serverCommand' | 'semcode.pythonPath' | 'PATH';
}

export interface LaunchError {
  error: string;
  /** The setting the user should change. */
  setting: 'semcode.serverCommand' | 'semcode.pythonPath';
}

export interface Environment extends PathContext {
  path: string;
  platform: NodeJS.Platform;
  isExecutable: (file: string) => boolean;
}

/** A file that exists and may be executed (on Windows: exists). */
export function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, process.platform === 'win32' ? fs.constants.F_OK : fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The first `name` on PATH (with Windows' executable extensions), or undefined. */
export function findOnPath(
  name: string,
  env: Pick<Environment, 'path' | 'platform' | 'isExecutable'>,
): string | undefined {
  const win = env.platform === 'win32';
  const sep = win ? ';' : ':';
  const exts = win ? ['.exe', '.cmd', '.bat', ''] : [''];
  const paths = win ? path.win32 : path.posix;
  for (const dir of env.path.split(sep)) {
    if (!dir) {
      continue;
    }
    for (const ext of exts) {
      const candidate = paths.join(dir, name + ext);
      if (env.isExecutable(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/**
 * How to start the server: `semcode.serverCommand` (run with `lsp`), else `semcode.pythonPath` (`-m lsp_server.cli
 * lsp`), else `semcode` on PATH. An error names the setting to change when the command cannot be found.
 */
export function resolveLaunch(s: Settings, env: Environment): Launch | LaunchError {
  const resolve = (value: string): string | undefined => {
    const expanded = expandPath(value, env);
    if (!expanded.includes('/') && !expanded.includes('\\')) {
      return findOnPath(expanded, env); // a bare name, like "semcode" or "python3"
    }
    return env.isExecutable(expanded) ? expanded : undefined;
  };
  if (s.serverCommand) {
    const command = resolve(s.serverCommand);
    return command
      ? { command, args: ['lsp'], source: 'semcode.serverCommand' }
      : {
          error: `semcode.serverCommand is "${s.serverCommand}", which is not an executable file.`,
          setting: 'semcode.serverCommand',
        };
  }
  if (s.pythonPath) {
    const command = resolve(s.pythonPath);
    return command
      ? { command, args: ['-m', 'lsp_server.cli', 'lsp'], source: 'semcode.pythonPath' }
      : {
          error: `semcode.pythonPath is "${s.pythonPath}", which is not an executable file.`,
          setting: 'semcode.pythonPath',
        };
  }
  const command = findOnPath('semcode', env);
  return command
    ? { command, args: ['lsp'], source: 'PATH' }
    : {
        error:
          'The semcode language server was not found on PATH. Install semcode (pip install semcode), or set ' +
          'semcode.serverCommand to its executable or semcode.pythonPath to a Python that has it.',
        setting: 'semcode.serverCommand',
      };
}

export function isLaunchError(l: Launch | LaunchError): l is LaunchError {
  return 'error' in l;
}

/** Everything that needs a server restart when it changes (launch, initializationOptions), as one string. */
export function serverKey(s: Settings, env: Environment): string {
  return JSON.stringify({ launch: resolveLaunch(s, env), options: initializationOptions(s, env) });
}

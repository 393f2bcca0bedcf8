/**
 * End-to-end test in a real VS Code: code-server (from npm) with the packaged .vsix installed, driven by Playwright
 * through Debian's Chromium, against the real semcode language server of this repository.
 *
 * Scenario: open the fixture workspace, wait for the index (status bar), `Semcode: Search` -> the expected function
 * is listed -> Enter opens it at its line; `Semcode: Find Related Code` from a known line lists the near-duplicate
 * function (QuickPick, then peek view); `Semcode: Show Status`; the server is killed and comes back; a missing
 * server command and a Python without semcode each give a notification whose button opens the setting; the
 * extension host log has no unhandled promise rejection. Screenshots go to test-results/.
 *
 * Environment: SEMCODE_CODE_SERVER (code-server executable, required), SEMCODE_E2E_VSIX (default semcode.vsix),
 * SEMCODE_E2E_SERVER (default <repo>/.venv/bin/semcode), SEMCODE_E2E_MODEL (a checkpoint folder or hub id;
 * unset or "default" leaves semcode.model unset so the server's shipped model is used; "tiny": a tiny random
 * checkpoint is written with <repo>/.venv/bin/python), CHROMIUM (default /usr/bin/chromium), SEMCODE_E2E_KEEP=1
 * keeps the temp folder.
 */

import * as cp from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, Locator, Page } from 'playwright-core';

const EXT = path.resolve(__dirname, '../../..');
const REPO = path.resolve(EXT, '..');
const FIXTURES = path.join(EXT, 'test', 'fixtures', 'workspace');
const RESULTS = path.join(EXT, 'test-results');

/** What the fixture workspace must give: (query, expected symbol, file, 1-based line) and a related pair. */
const SEARCH = { query: 'circle area radius', symbol: 'circle_area', file: 'geometry.py', line: 6 };
const RELATED = {
  file: 'readers.py',
  line: 6,
  from: 'parse_csv_rows',
  expect: 'parse_tsv_rows',
  expectFile: 'tables.py',
};

const INDEX_TIMEOUT = 240_000;
const UI_TIMEOUT = 30_000;

const t0 = Date.now();
function log(message: string): void {
  console.log(`[e2e ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${message}`);
}

function env(name: string, fallback?: string): string {
  const value = process.env[name];
  if (value) {
    return value;
  }
  if (fallback === undefined) {
    throw new Error(`${name} is not set`);
  }
  return fallback;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function writeModel(tmp: string): string | undefined {
  const configured = process.env.SEMCODE_E2E_MODEL;
  if (!configured || configured === 'default') {
    return undefined;
  }
  if (configured !== 'tiny') {
    return configured;
  }
  const folder = path.join(tmp, 'model');
  const python = path.join(REPO, '.venv', 'bin', 'python');
  const code =
    'import sys; from pathlib import Path; from encoder.tiny import write_tiny_checkpoint; ' +
    'write_tiny_checkpoint(Path(sys.argv[1]))';
  cp.execFileSync(python, ['-c', code, folder], { cwd: REPO, stdio: 'inherit' });
  return folder;
}

/** Settings without which the workbench shows welcome pages, tips and calls to the network. */
const QUIET_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'security.workspace.trust.enabled': false,
  'chat.commandCenter.enabled': false,
  'editor.minimap.enabled': false,
};

/**
 * The settings: user settings.json (read at startup) and the workspace's .vscode/settings.json for changes made
 * while VS Code runs (code-server notices edits of workspace files; it did not notice edits of the user file).
 */
class Settings {
  private changes: Record<string, unknown> = {};

  constructor(
    userFile: string,
    private readonly workspaceFile: string,
    values: Record<string, unknown>,
  ) {
    fs.mkdirSync(path.dirname(userFile), { recursive: true });
    fs.writeFileSync(userFile, JSON.stringify(values, null, 2));
  }

  update(changes: Record<string, unknown>): void {
    this.changes = { ...this.changes, ...changes };
    fs.mkdirSync(path.dirname(this.workspaceFile), { recursive: true });
    fs.writeFileSync(this.workspaceFile, JSON.stringify(this.changes, null, 2));
  }
}

/** The pids below `root` (children, grandchildren, ...), from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended meanwhile
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop() as number;
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      stack.push(child);
    }
  }
  return out;
}

/** The semcode language server started (through the extension host) by our code-server. */
function serverPids(codeServerPid: number): number[] {
  return descendants(codeServerPid).filter((pid) => {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv.some((a) => a.endsWith('semcode')) && argv.includes('lsp');
    } catch {
      return false;
    }
  });
}

class Workbench {
  constructor(readonly page: Page) {}

  async screenshot(name: string): Promise<void> {
    await this.page.screenshot({ path: path.join(RESULTS, `${name}.png`) });
  }

  get quickInput(): Locator {
    return this.page.locator('.quick-input-widget input[type="text"], .quick-input-widget input:not([type])').first();
  }

  quickRows(text?: string | RegExp): Locator {
    const rows = this.page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
    return text === undefined ? rows : rows.filter({ hasText: text });
  }

  async rowTexts(): Promise<string[]> {
    return (await this.quickRows().allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
  }

  /** Run a command by its palette title; commands register late, so retry. */
  async command(title: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.page.keyboard.press('F1');
      await this.quickInput.waitFor({ state: 'visible', timeout: UI_TIMEOUT });
      await this.quickInput.fill(`>${title}`);
      const row = this.quickRows(title).first();
      try {
        await row.waitFor({ state: 'visible', timeout: 3000 });
        await this.page.keyboard.press('Enter');
        return;
      } catch (e) {
        await this.page.keyboard.press('Escape');
        if (attempt >= 10) {
          throw new Error(`command "${title}" not found in the palette: ${String(e)}`);
        }
      }
    }
  }

  /** The Semcode status bar item's accessible label (its tooltip text). */
  async semcodeStatus(): Promise<string> {
    const items = await this.page.locator('.part.statusbar [aria-label^="Semcode"]').all();
    for (const item of items) {
      const label = await item.getAttribute('aria-label');
      if (label) {
        return label;
      }
    }
    return '';
  }

  async waitForStatus(pattern: RegExp, timeoutMs: number): Promise<string> {
    let last = '';
    try {
      return await until(`status bar ${pattern}`, timeoutMs, async () => {
        const label = await this.semcodeStatus();
        if (label !== last) {
          log(`status bar: ${label || '(none)'}`);
          last = label;
        }
        return pattern.test(label) ? label : undefined;
      });
    } catch (e) {
      throw new Error(`${String(e)}; last status: "${last}"`);
    }
  }

  async cursorPosition(): Promise<string> {
    const texts = await this.page.locator('.statusbar-item').allInnerTexts();
    return texts.find((t) => /^Ln \d+, Col \d+/.test(t.trim()))?.trim() ?? '';
  }

  /** The text of a line of the active editor (rendered lines and line numbers share their `top`). */
  async editorLine(line: number): Promise<string> {
    const editor = this.page.locator('.editor-group-container.active .monaco-editor').first();
    const number = editor.locator('.margin-view-overlays > div', {
      has: this.page.locator('.line-numbers', { hasText: new RegExp(`^\\s*${line}\\s*$`) }),
    });
    const top = /top:\s*([\d.]+px)/.exec((await number.first().getAttribute('style')) ?? '')?.[1];
    if (top === undefined) {
      return '';
    }
    const text = await editor.locator(`.view-lines > .view-line[style*="top:${top}"]`).first().innerText();
    return text.replace(/\u00a0/g, ' ');
  }

  async activeTab(): Promise<string> {
    return (await this.page.locator('.tabs-container .tab.active').first().innerText()).trim();
  }

  async openFileAtLine(file: string, line: number): Promise<void> {
    await this.page.keyboard.press('Control+P');
    await this.quickInput.waitFor({ state: 'visible', timeout: UI_TIMEOUT });
    await this.quickInput.fill(file);
    await this.quickRows(file).first().waitFor({ state: 'visible', timeout: UI_TIMEOUT });
    await this.page.keyboard.press('Enter');
    await until(`${file} open`, UI_TIMEOUT, async () => ((await this.activeTab()).startsWith(file) ? true : undefined));
    await this.page.locator('.monaco-editor .view-lines').first().click();
    await this.page.keyboard.press('Control+G');
    await this.quickInput.waitFor({ state: 'visible', timeout: UI_TIMEOUT });
    await this.quickInput.fill(`:${line}`);
    await this.page.keyboard.press('Enter');
    await until(`cursor on line ${line}`, UI_TIMEOUT, async () =>
      (await this.cursorPosition()).startsWith(`Ln ${line},`) ? true : undefined,
    );
  }

  notification(text: string | RegExp): Locator {
    return this.page.locator('.notifications-toasts .notification-toast').filter({ hasText: text }).first();
  }

  async closeNotifications(): Promise<void> {
    await this.command('Notifications: Clear All Notifications');
  }
}

function check(condition: boolean, message: string): void {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
  log(`ok: ${message}`);
}

/**
 * Unhandled promise rejections that involve semcode. The extension host reports each with console.warn
 * ("rejected promise not handled within 1 second", then the stack trace); that reaches the page's console and the
 * logs. Returns the offending lines from `lines` (page console) and every log file below `dirs`.
 */
function unhandledRejections(lines: string[], dirs: string[]): string[] {
  const sources: [string, string[]][] = [['page console', lines]];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(full);
      } else if (entry.name.endsWith('.log')) {
        sources.push([full, fs.readFileSync(full, 'utf8').split('\n')]);
      }
    }
  };
  dirs.filter((d) => fs.existsSync(d)).forEach(walk);
  const found: string[] = [];
  for (const [source, text] of sources) {
    text.forEach((line, i) => {
      const context = text.slice(i, i + 4).join(' | ');
      if (/rejected promise not handled/i.test(line) && /semcode/i.test(context)) {
        found.push(`${source}: ${context}`);
      }
    });
  }
  return found;
}

async function main(): Promise<void> {
  const codeServer = env('SEMCODE_CODE_SERVER');
  const vsix = env('SEMCODE_E2E_VSIX', path.join(EXT, 'semcode.vsix'));
  const serverCommand = env('SEMCODE_E2E_SERVER', path.join(REPO, '.venv', 'bin', 'semcode'));
  const browserPath = env('CHROMIUM', '/usr/bin/chromium');
  fs.rmSync(RESULTS, { recursive: true, force: true });
  fs.mkdirSync(RESULTS, { recursive: true });

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'semcode-e2e-'));
  const workspace = path.join(tmp, 'workspace');
  fs.cpSync(FIXTURES, workspace, { recursive: true });
  const dataDir = path.join(tmp, 'data');
  const model = writeModel(tmp);
  log(`temp folder ${tmp}; model ${model ?? '(server default)'}`);

  const settings = new Settings(
    path.join(dataDir, 'User', 'settings.json'),
    path.join(workspace, '.vscode', 'settings.json'),
    {
      ...QUIET_SETTINGS,
      'semcode.exclude': ['.vscode/'],
      'semcode.serverCommand': serverCommand,
      'semcode.indexDir': path.join(tmp, 'index'),
      'semcode.related.limit': 3,
      ...(model ? { 'semcode.model': model } : {}),
    },
  );
  const csEnv = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(tmp, 'xdg-config'),
    XDG_DATA_HOME: path.join(tmp, 'xdg-data'),
    XDG_CACHE_HOME: path.join(tmp, 'xdg-cache'),
  };
  fs.writeFileSync(path.join(tmp, 'config.yaml'), 'auth: none\n');
  const common = [
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--user-data-dir',
    dataDir,
    '--extensions-dir',
    path.join(tmp, 'ext'),
    '--config',
    path.join(tmp, 'config.yaml'),
  ];
  log(`installing ${vsix}`);
  cp.execFileSync(codeServer, [...common, '--install-extension', vsix], { env: csEnv, stdio: 'inherit' });

  const port = await freePort();
  const server = cp.spawn(codeServer, [...common, '--bind-addr', `127.0.0.1:${port}`, workspace], {
    env: csEnv,
    detached: true, // its own process group: the extension host and the semcode server end with it
    stdio: ['ignore', fs.openSync(path.join(RESULTS, 'code-server.log'), 'w'), 'inherit'],
  });
  const codeServerPid = server.pid as number;
  const base = `http://127.0.0.1:${port}`;
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  let wb: Workbench | undefined;
  const consoleLines: string[] = [];
  try {
    await until('code-server /healthz', 60_000, async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined));
    log(`code-server up on ${base}`);
    browser = await chromium.launch({
      executablePath: browserPath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
      ],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(UI_TIMEOUT);
    page.on('console', (m) => consoleLines.push(m.text()));
    page.on('pageerror', (e) => consoleLines.push(`page error: ${e.stack ?? e.message}`));
    wb = new Workbench(page);
    await page.goto(`${base}/?folder=${encodeURIComponent(workspace)}`);
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
    log('workbench loaded');

    // 1. the index is built: the status bar says ready
    await wb.waitForStatus(/^Semcode: ready, \d+ files/, INDEX_TIMEOUT);
    await wb.screenshot('01-ready');

    // 2. search: the expected function is listed; Enter opens it at its line
    await wb.command('Semcode: Search');
    await wb.quickInput.fill(SEARCH.query);
    await wb.quickRows(SEARCH.symbol).first().waitFor({ state: 'visible' });
    const searchRows = await wb.rowTexts();
    log(`search "${SEARCH.query}": ${JSON.stringify(searchRows)}`);
    check(
      searchRows.some((r) => r.includes(SEARCH.symbol) && r.includes(`${SEARCH.file}:${SEARCH.line}`)),
      `search lists ${SEARCH.symbol} at ${SEARCH.file}:${SEARCH.line}`,
    );
    await wb.screenshot('02-search');
    await wb.quickRows(SEARCH.symbol).first().click();
    await until(`${SEARCH.file} opened`, UI_TIMEOUT, async () =>
      (await wb!.activeTab()).startsWith(SEARCH.file) ? true : undefined,
    );
    const cursor = await until('cursor position', UI_TIMEOUT, async () => (await wb!.cursorPosition()) || undefined);
    check(
      cursor.startsWith(`Ln ${SEARCH.line}, Col 1`),
      `the editor shows ${SEARCH.file} at line ${SEARCH.line} (${cursor})`,
    );
    const shown = await wb.editorLine(SEARCH.line);
    check(shown.startsWith(`def ${SEARCH.symbol}(`), `line ${SEARCH.line} of the editor is "${shown}"`);
    await wb.screenshot('03-search-opened');

    // 3. related code, as a QuickPick
    await wb.openFileAtLine(RELATED.file, RELATED.line);
    await wb.command('Semcode: Find Related Code');
    await wb.quickRows(RELATED.expect).first().waitFor({ state: 'visible' });
    const relatedRows = await wb.rowTexts();
    const title = await page.locator('.quick-input-widget .quick-input-title').innerText();
    log(`related to ${RELATED.file}:${RELATED.line} (${title}): ${JSON.stringify(relatedRows)}`);
    check(title.includes(RELATED.from), `the related list is titled after ${RELATED.from}`);
    check(
      relatedRows.length <= 3 && relatedRows.some((r) => r.includes(RELATED.expect)),
      `${RELATED.expect} is among the top 3`,
    );
    await wb.screenshot('04-related');
    await page.keyboard.press('Escape');

    // 4. related code, as a peek view (a client-only setting: no restart)
    settings.update({ 'semcode.related.view': 'peek' });
    await until('the peek view', 2 * UI_TIMEOUT, async () => {
      // a try before the client read the setting opens the QuickPick instead: close whatever is open first
      await page.keyboard.press('Escape');
      await wb!.command('Semcode: Find Related Code');
      const peek = page.locator('.peekview-widget').first();
      await peek.waitFor({ state: 'visible', timeout: 5000 });
      const text = await peek.innerText();
      return text.includes(RELATED.expectFile) ? text : undefined;
    });
    log('peek view lists the related file');
    await wb.screenshot('05-related-peek');
    await page.keyboard.press('Escape');

    // 5. Show Status
    await wb.command('Semcode: Show Status');
    const statusToast = wb.notification(/Semcode ready: \d+ files/);
    await statusToast.waitFor({ state: 'visible' });
    log(`status: ${(await statusToast.innerText()).replace(/\s+/g, ' ')}`);
    await wb.closeNotifications();

    // 6. the server is killed and comes back
    const before = serverPids(codeServerPid);
    check(before.length === 1, `one semcode server runs (pid ${before.join(', ')})`);
    process.kill(before[0], 'SIGKILL');
    await wb.waitForStatus(/restarting|starting|loading/, UI_TIMEOUT);
    await wb.waitForStatus(/^Semcode: ready/, INDEX_TIMEOUT);
    const after = serverPids(codeServerPid);
    check(after.length === 1 && after[0] !== before[0], `a new server runs after the crash (pid ${after.join(', ')})`);
    await wb.command('Semcode: Reindex');
    await wb.waitForStatus(/^Semcode: ready/, INDEX_TIMEOUT);
    await wb.screenshot('06-restarted');

    // 7. the server cannot start: a notification says what to do and opens the setting
    settings.update({ 'semcode.serverCommand': path.join(tmp, 'missing', 'semcode') });
    const notFound = wb.notification('semcode.serverCommand');
    await notFound.waitFor({ state: 'visible' });
    log(`notification: ${(await notFound.innerText()).replace(/\s+/g, ' ')}`);
    await wb.waitForStatus(/^Semcode is not running/, UI_TIMEOUT);
    await wb.screenshot('07-not-found');
    await notFound.getByRole('button', { name: 'Open Settings' }).click();
    await until('the settings editor on semcode.serverCommand', UI_TIMEOUT, async () => {
      const search = await page.locator('.settings-editor .suggest-input-container .view-lines').first().innerText();
      return search.includes('semcode.serverCommand') ? true : undefined;
    });
    log('"Open Settings" opened the settings editor on semcode.serverCommand');
    await wb.screenshot('08-settings');

    // 8. a Python without semcode: the server exits during startup; the notification points at pythonPath
    settings.update({ 'semcode.serverCommand': '', 'semcode.pythonPath': '/usr/bin/python3' });
    const noModule = wb.notification('semcode.pythonPath');
    await noModule.waitFor({ state: 'visible' });
    const text = (await noModule.innerText()).replace(/\s+/g, ' ');
    log(`notification: ${text}`);
    check(/exited during startup/.test(text), 'the notification says the server exited during startup');
    await wb.screenshot('09-wrong-python');

    await new Promise((r) => setTimeout(r, 1500)); // the extension host waits 1 s before reporting a rejection
    const rejections = unhandledRejections(consoleLines, [dataDir, RESULTS]);
    check(rejections.length === 0, `no unhandled promise rejection involving semcode ${rejections.join('\n')}`);
    log('PASS');
  } catch (e) {
    await wb?.screenshot('failure').catch(() => undefined);
    if (wb) {
      const toasts = await wb.page
        .locator('.notifications-toasts')
        .allInnerTexts()
        .catch(() => []);
      log(`notifications on screen: ${JSON.stringify(toasts)}`);
    }
    throw e;
  } finally {
    await browser?.close().catch(() => undefined);
    try {
      process.kill(-codeServerPid, 'SIGTERM');
    } catch {
      // already gone
    }
    copyLogs(dataDir);
    if (process.env.SEMCODE_E2E_KEEP) {
      log(`kept ${tmp}`);
    } else {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
}

/** The extension host and Semcode output logs, for a look after a failure. */
function copyLogs(dataDir: string): void {
  const logs = path.join(dataDir, 'logs');
  if (fs.existsSync(logs)) {
    fs.cpSync(logs, path.join(RESULTS, 'logs'), { recursive: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`[e2e] FAIL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);

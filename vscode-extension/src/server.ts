/**
 * Starts, stops and restarts the semcode language server (`semcode lsp` over stdio) through vscode-languageclient.
 *
 * One `ServerManager` owns the client. Restart policy: a settings change or the user restarts at once; a crash
 * restarts with exponential backoff (backoff.ts) and gives up after too many crashes in a row; a server that cannot
 * start at all (missing command, wrong interpreter, exit during initialize) is not retried: a notification says
 * what to fix, with a button that opens the setting. The library's own notifications are turned off so that the
 * user sees one message, with advice, and everything else goes to the "Semcode" output channel.
 */

import * as cp from 'node:child_process';
import * as os from 'node:os';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
} from 'vscode-languageclient/node';
import { CrashTracker } from './backoff';
import { ServerProcess } from './process';
import { IndexChanged, IndexSummary, Methods, Status } from './protocol';
import {
  Environment,
  initializationOptions,
  isExecutable,
  isLaunchError,
  Launch,
  resolveLaunch,
  serverKey,
  Settings,
} from './settings';
import type { ServerPhase } from './state';

/** vscode-languageclient with its notifications muted and its stop made safe to call in any state. */
class SemcodeLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown, _showNotification?: boolean | 'force'): void {
    super.error(message, data, false);
  }

  // After a failed initialize the library calls `void this.stop()`, which rejects for a client that never ran.
  override stop(timeout?: number): Promise<void> {
    return super.stop(timeout).catch((e: unknown) => this.info(`stop: ${String(e)}`, undefined, false));
  }
}

class NotRunningError extends Error {}

/** One start of the server: its client, process and the settings key it was started with. */
interface Session {
  generation: number;
  client: SemcodeLanguageClient;
  process?: ServerProcess;
  key: string;
}

export class ServerManager implements vscode.Disposable {
  private session: Session | undefined;
  /** Bumped by every start and stop: callbacks of an older session see another number and do nothing. */
  private generation = 0;
  private starting: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private readonly crashes = new CrashTracker();
  private _phase: ServerPhase = { phase: 'idle' };
  private readonly phaseEmitter = new vscode.EventEmitter<ServerPhase>();
  readonly onDidChangePhase = this.phaseEmitter.event;

  constructor(
    private readonly output: vscode.OutputChannel,
    private readonly settings: () => Settings,
  ) {}

  get phase(): ServerPhase {
    return this._phase;
  }

  log(message: string): void {
    this.output.appendLine(`[${new Date().toLocaleTimeString()}] ${message}`);
  }

  showLog(): void {
    this.output.show(true);
  }

  private setPhase(phase: ServerPhase): void {
    this._phase = phase;
    this.phaseEmitter.fire(phase);
  }

  private environment(): Environment {
    return {
      home: os.homedir(),
      workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
      path: process.env.PATH ?? '',
      platform: process.platform,
      isExecutable,
    };
  }

  /** Start unless started; resolves when running or failed (never rejects). */
  start(): Promise<void> {
    if (this.session !== undefined) {
      return this.starting ?? Promise.resolve();
    }
    clearTimeout(this.restartTimer);
    const generation = ++this.generation;
    this.starting = this.doStart(generation).finally(() => {
      if (generation === this.generation) {
        this.starting = undefined;
      }
    });
    return this.starting;
  }

  /** Stop, then start afresh (settings changed, or the user asked); the crash count starts over. */
  async restart(reason: string): Promise<void> {
    this.log(`restarting the server: ${reason}`);
    this.crashes.reset();
    await this.stop();
    await this.start();
  }

  /** Restart only when what the server is started with changed (or it is not running). */
  async settingsChanged(): Promise<void> {
    const key = serverKey(this.settings(), this.environment());
    if (key !== this.session?.key || this._phase.phase === 'failed') {
      await this.restart('settings changed');
    }
  }

  async stop(): Promise<void> {
    this.generation++;
    clearTimeout(this.restartTimer);
    clearTimeout(this.pollTimer);
    const session = this.session;
    this.session = this.starting = undefined;
    if (session !== undefined) {
      await this.endSession(session);
    }
    this.setPhase({ phase: 'idle' });
  }

  /** shutdown + exit through the client, then SIGTERM if the process is still there. */
  private async endSession(session: Session): Promise<void> {
    try {
      await session.client.dispose(2000);
    } catch (e) {
      this.log(`stopping the server: ${String(e)}`);
    }
    await session.process?.end(1000);
  }

  dispose(): void {
    void this.stop();
    this.phaseEmitter.dispose();
  }

  private async doStart(generation: number): Promise<void> {
    if (!vscode.workspace.workspaceFolders?.length) {
      this.log('no workspace folder: the server starts when a folder is opened');
      this.setPhase({ phase: 'idle' });
      return;
    }
    const settings = this.settings();
    const env = this.environment();
    const launch = resolveLaunch(settings, env);
    if (isLaunchError(launch)) {
      this.fail(launch.error, launch.setting);
      return;
    }
    this.setPhase({ phase: 'starting' });
    const options = initializationOptions(settings, env);
    this.log(`starting: ${[launch.command, ...launch.args].join(' ')} (from ${launch.source})`);
    this.log(`initializationOptions: ${JSON.stringify(options)}`);
    const cwd = vscode.workspace.workspaceFolders[0].uri.fsPath;
    const spawn = async (): Promise<cp.ChildProcess> => {
      session.process = await ServerProcess.spawn(launch, cwd, (m) => this.log(m));
      return session.process.child;
    };
    const client = new SemcodeLanguageClient('semcode', 'Semcode', spawn, this.clientOptions(generation, options));
    const session: Session = { generation, client, key: serverKey(settings, env) };
    this.session = session;
    let failure: unknown;
    try {
      await client.start();
    } catch (e) {
      failure = e;
    }
    if (generation !== this.generation) {
      await this.endSession(session); // stopped or restarted meanwhile
      return;
    }
    // start() can resolve without a running client when the server exits during initialize
    if (failure !== undefined || !client.isRunning()) {
      await this.startFailed(session, launch, failure ?? new Error('the connection closed during startup'));
      return;
    }
    this.crashes.started();
    this.log(`server running (pid ${session.process?.pid ?? '?'})`);
    client.onNotification(Methods.indexChanged, (p: IndexChanged) => {
      if (generation === this.generation) {
        this.indexUpdated(p.index);
      }
    });
    this.setPhase({ phase: 'running' });
    this.pollStatus(generation);
  }

  private clientOptions(generation: number, initOptions: Record<string, unknown>): LanguageClientOptions {
    return {
      documentSelector: [{ scheme: 'file' }],
      initializationOptions: initOptions,
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationFailedHandler: (error) => {
        this.log(`initialize failed: ${String(error)}`);
        return false;
      },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => {
          this.closed(generation);
          // Answer after the pending microtasks: when the server exits during initialize, vscode-languageclient 9
          // forgets its start promise once this handler has answered; answering first would leave that promise's
          // rejection unhandled and make start() resolve as if all went well.
          return new Promise((resolve) =>
            setTimeout(() => resolve({ action: CloseAction.DoNotRestart, handled: true }), 0),
          );
        },
      },
    };
  }

  private async startFailed(session: Session, launch: Launch, error: unknown): Promise<void> {
    this.session = undefined;
    // the exit status: the connection usually closes before the process is reaped
    const exit = await session.process?.waitForExit(1500);
    const last = session.process?.lastLines(3).join(' | ') ?? '';
    void this.endSession(session);
    const what = exit ? `exited during startup (${exit})` : `could not start: ${errorMessage(error)}`;
    const setting = launch.source === 'semcode.pythonPath' ? 'semcode.pythonPath' : 'semcode.serverCommand';
    const advice =
      launch.source === 'semcode.pythonPath'
        ? 'Check that semcode.pythonPath is a Python with semcode installed.'
        : 'Check semcode.serverCommand (the semcode executable).';
    this.fail(`The semcode server (${launch.command}) ${what}${last ? `: ${last}` : ''}. ${advice}`, setting);
  }

  private fail(message: string, setting?: string): void {
    this.log(message);
    this.setPhase({ phase: 'failed', message, setting });
    const buttons = setting ? ['Open Settings', 'Show Log'] : ['Show Log'];
    this.notify('error', message, buttons, setting);
  }

  private notify(kind: 'error' | 'warning', message: string, buttons: string[], setting?: string): void {
    const show = kind === 'error' ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
    show(message, ...buttons).then(
      (choice) => {
        if (choice === 'Open Settings') {
          void vscode.commands.executeCommand('workbench.action.openSettings', setting ?? 'semcode');
        } else if (choice === 'Show Log') {
          this.showLog();
        } else if (choice === 'Restart') {
          void this.restart('asked by the user');
        }
      },
      (e: unknown) => this.log(`notification: ${String(e)}`),
    );
  }

  /** The connection closed without a stop from us: a crash, unless it happened during startup. */
  private closed(generation: number): void {
    const session = this.session;
    if (generation !== this.generation || session === undefined || this._phase.phase !== 'running') {
      return; // an old session, or startup (startFailed reports that)
    }
    this.session = undefined;
    this.generation++;
    clearTimeout(this.pollTimer);
    void this.endSession(session);
    const decision = this.crashes.crashed();
    if (!decision.restart) {
      const message = `The semcode server stopped ${decision.crashes} times in a row; see the log.`;
      this.log(message);
      this.setPhase({ phase: 'failed', message });
      this.notify('error', message, ['Restart', 'Show Log']);
      return;
    }
    this.log(`the server stopped unexpectedly; restart ${decision.crashes} in ${decision.delayMs} ms`);
    this.setPhase({ phase: 'restarting', delayMs: decision.delayMs, crashes: decision.crashes });
    this.restartTimer = setTimeout(() => void this.start(), decision.delayMs);
  }

  private indexUpdated(index: IndexSummary, lastError?: string): void {
    if (this._phase.phase === 'running') {
      this.setPhase({ phase: 'running', index, lastError });
    }
    if (index.state === 'indexing') {
      this.pollStatus(this.generation, 1000);
    }
  }

  /** Ask for the status now (or in `delayMs`), and again every second while the server is indexing. */
  pollStatus(generation = this.generation, delayMs = 0): void {
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => {
      if (generation !== this.generation || this.polling) {
        return;
      }
      this.polling = true;
      this.request<Status>(Methods.status, {})
        .then(
          (s) => {
            if (generation !== this.generation) {
              return;
            }
            this.indexUpdated(s, s.lastError);
          },
          (e: unknown) => this.log(`status: ${errorMessage(e)}`),
        )
        .finally(() => (this.polling = false));
    }, delayMs);
  }

  /** A request to the running server (waits for a start in progress); rejects when it is not running. */
  async request<R>(method: string, params: unknown, token?: vscode.CancellationToken): Promise<R> {
    if (this.starting !== undefined) {
      await this.starting;
    }
    const client = this.session?.client;
    if (client === undefined || this._phase.phase !== 'running') {
      throw new NotRunningError(notRunningMessage(this._phase));
    }
    return token ? client.sendRequest<R>(method, params, token) : client.sendRequest<R>(method, params);
  }

  async reindex(): Promise<void> {
    await this.request(ExecuteCommandRequest.method, { command: Methods.reindex, arguments: [] });
    this.pollStatus(this.generation);
  }

  /** Tell the user why a command failed: not running (with what to do), or the server's error. */
  explain(error: unknown): void {
    if (error instanceof NotRunningError) {
      const setting = this._phase.phase === 'failed' ? this._phase.setting : undefined;
      this.notify('warning', error.message, setting ? ['Open Settings', 'Show Log'] : ['Restart', 'Show Log'], setting);
      return;
    }
    const message = errorMessage(error);
    this.log(`request failed: ${message}`);
    this.notify('error', `Semcode: ${message}`, ['Show Log']);
  }
}

function notRunningMessage(p: ServerPhase): string {
  switch (p.phase) {
    case 'idle':
      return 'Semcode: open a folder first; the server indexes workspace folders.';
    case 'failed':
      return `Semcode is not running. ${p.message}`;
    case 'restarting':
      return 'Semcode: the server is restarting; try again in a moment.';
    default:
      return 'Semcode: the server is not running.';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A request cancelled by us (a newer query replaced it): not worth a message. */
export function isCancellation(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === -32800;
}

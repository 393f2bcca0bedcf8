/** The server's child process: spawned for vscode-languageclient, with its exit status and last stderr lines. */

import * as cp from 'node:child_process';
import type { Launch } from './settings';

export class ServerProcess {
  /** "exit code 1", "killed by SIGKILL", once it has ended. */
  readonly exited: Promise<string>;
  private stderr = '';

  private constructor(readonly child: cp.ChildProcess) {
    child.stderr?.on('data', (data: Buffer) => {
      this.stderr = (this.stderr + data.toString()).split('\n').slice(-20).join('\n');
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit code ${code}`));
    });
  }

  /** Resolves once the process runs; rejects when it cannot be started (ENOENT, EACCES). */
  static spawn(launch: Launch, cwd: string | undefined, log: (message: string) => void): Promise<ServerProcess> {
    return new Promise((resolve, reject) => {
      const child = cp.spawn(launch.command, launch.args, { cwd, stdio: 'pipe', env: process.env });
      const server = new ServerProcess(child);
      child.on('error', (e) => {
        log(`server process: ${e.message}`);
        reject(new Error(`cannot run ${launch.command}: ${e.message}`));
      });
      child.once('spawn', () => resolve(server));
      void server.exited.then((how) => log(`server process ${child.pid ?? ''} ended (${how})`));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last non-blank lines the server wrote to stderr. */
  lastLines(n: number): string[] {
    return this.stderr
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-n);
  }

  /** How it ended, or undefined if it is still running after `ms`. */
  waitForExit(ms: number): Promise<string | undefined> {
    return Promise.race([this.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);
  }

  /** SIGTERM unless it has ended within `graceMs`. */
  async end(graceMs: number): Promise<void> {
    if (this.running && (await this.waitForExit(graceMs)) === undefined) {
      this.child.kill();
    }
  }
}

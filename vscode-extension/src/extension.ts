/** Entry point: creates the output channel, the server manager and the status bar, and wires commands and events. */

import * as vscode from 'vscode';
import { statusDetails, statusSummary } from './format';
import { Methods, Status } from './protocol';
import { relatedCommand } from './related';
import { searchCommand } from './search';
import { ServerManager } from './server';
import { parseSettings, Settings } from './settings';
import { StatusBar } from './statusBar';

let manager: ServerManager | undefined;

function readSettings(output: vscode.OutputChannel): Settings {
  const config = vscode.workspace.getConfiguration('semcode');
  const { settings, problems } = parseSettings((key) => config.get(key));
  for (const problem of problems) {
    output.appendLine(problem);
    void vscode.window.showWarningMessage(problem);
  }
  return settings;
}

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Semcode');
  let settings = readSettings(output);
  const server = new ServerManager(output, () => settings);
  manager = server;

  /** A command whose failures become a message, never an unhandled rejection. */
  const command = (id: string, run: () => unknown): vscode.Disposable =>
    vscode.commands.registerCommand(id, async () => {
      try {
        await run();
      } catch (e) {
        server.explain(e);
      }
    });

  context.subscriptions.push(
    output,
    server,
    new StatusBar(server),
    command('semcode.search', () => searchCommand(server, () => settings)),
    command('semcode.findRelated', () => relatedCommand(server, () => settings)),
    command('semcode.reindexWorkspace', async () => {
      await server.reindex();
      vscode.window.setStatusBarMessage('Semcode: reindexing', 3000);
    }),
    command('semcode.showStatus', () => showStatus(server)),
    command('semcode.restartServer', () => server.restart('asked by the user')),
    command('semcode.showLog', () => output.show(true)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('semcode')) {
        settings = readSettings(output);
        void server.settingsChanged();
      }
    }),
    // FIXME: the server does not handle workspace/didChangeWorkspaceFolders yet (issue 6); a restart re-reads them
    vscode.workspace.onDidChangeWorkspaceFolders(() => void server.restart('workspace folders changed')),
  );
  void server.start();
}

async function showStatus(server: ServerManager): Promise<void> {
  const phase = server.phase;
  if (phase.phase === 'starting' || (phase.phase === 'running' && phase.index === undefined)) {
    void vscode.window.showInformationMessage('Semcode: the server is starting.');
    return;
  }
  const status = await server.request<Status>(Methods.status, {});
  server.log(`status:\n${statusDetails(status)}`);
  const choice = await vscode.window.showInformationMessage(
    statusSummary(status),
    'Show Details',
    'Reindex',
    'Restart Server',
  );
  if (choice === 'Show Details') {
    server.showLog();
  } else if (choice === 'Reindex') {
    await server.reindex();
  } else if (choice === 'Restart Server') {
    await server.restart('asked by the user');
  }
}

export function deactivate(): Promise<void> | undefined {
  return manager?.stop();
}

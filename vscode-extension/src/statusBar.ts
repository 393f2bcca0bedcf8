/** The status bar item: the server's phase and the index state; a click shows the status. */

import * as vscode from 'vscode';
import { statusBarText } from './format';
import type { ServerManager } from './server';
import type { ServerPhase } from './state';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('semcode.status', vscode.StatusBarAlignment.Left, 10);
  private readonly subscription: vscode.Disposable;

  constructor(manager: ServerManager) {
    this.item.name = 'Semcode';
    this.item.command = 'semcode.showStatus';
    this.subscription = manager.onDidChangePhase((p) => this.render(p));
    this.render(manager.phase);
    this.item.show();
  }

  private render(p: ServerPhase): void {
    const { text, tooltip } = statusBarText(p);
    this.item.text = text;
    this.item.tooltip = tooltip;
    this.item.accessibilityInformation = { label: tooltip, role: 'button' };
    const failed = p.phase === 'failed' || (p.phase === 'running' && p.index?.state === 'error');
    this.item.backgroundColor = failed ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}

/** `Semcode: Search`: a QuickPick that asks the server as you type (debounced) and opens the chosen hit. */

import * as vscode from 'vscode';
import { HitItem, hitItems, messageItem, openHit } from './locations';
import { searchTitle } from './format';
import { Methods, SearchParams, SearchResult } from './protocol';
import { errorMessage, isCancellation, ServerManager } from './server';
import type { Settings } from './settings';

const TITLE = 'Semcode: Search';

export function searchCommand(manager: ServerManager, settings: () => Settings): void {
  const picker = vscode.window.createQuickPick<HitItem>();
  picker.title = TITLE;
  picker.placeholder = 'Describe the code you are looking for, e.g. "read a config file"';
  picker.matchOnDescription = false;
  picker.matchOnDetail = false;
  let timer: NodeJS.Timeout | undefined;
  let pending: vscode.CancellationTokenSource | undefined;
  let latest = 0;

  const cancelPending = (): void => {
    clearTimeout(timer);
    pending?.cancel();
    pending?.dispose();
    pending = undefined;
  };

  const run = async (query: string, seq: number): Promise<void> => {
    const s = settings().search;
    const params: SearchParams = { query, limit: s.limit, mode: s.mode };
    pending = new vscode.CancellationTokenSource();
    try {
      const result = await manager.request<SearchResult>(Methods.search, params, pending.token);
      if (seq !== latest) {
        return;
      }
      picker.items = result.results.length ? hitItems(result.results) : [messageItem('No results')];
      picker.title = searchTitle(result.index, TITLE);
    } catch (e) {
      if (seq !== latest || isCancellation(e)) {
        return;
      }
      if (manager.phase.phase !== 'running') {
        picker.hide();
        manager.explain(e);
        return;
      }
      manager.log(`search failed: ${errorMessage(e)}`);
      picker.items = [messageItem(`$(error) ${errorMessage(e)}`)];
    } finally {
      if (seq === latest) {
        picker.busy = false;
      }
    }
  };

  picker.onDidChangeValue((value) => {
    cancelPending();
    const seq = ++latest;
    const query = value.trim();
    if (!query) {
      picker.items = [];
      picker.busy = false;
      return;
    }
    picker.busy = true;
    timer = setTimeout(() => void run(query, seq), settings().search.delayMs);
  });
  picker.onDidAccept(() => {
    const hit = (picker.selectedItems[0] ?? picker.activeItems[0])?.hit;
    if (hit !== undefined) {
      picker.hide();
      openHit(hit).catch((e: unknown) => manager.explain(e));
    }
  });
  picker.onDidHide(() => {
    latest++;
    cancelPending();
    picker.dispose();
  });

  const selected = vscode.window.activeTextEditor?.selection;
  const text = selected && !selected.isEmpty ? vscode.window.activeTextEditor?.document.getText(selected) : '';
  picker.show();
  if (text && !text.includes('\n') && text.length < 200) {
    picker.value = text; // fires onDidChangeValue
  }
}

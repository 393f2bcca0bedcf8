/** `Semcode: Find Related Code`: code like the chunk at the cursor (or selection), in a QuickPick or a peek view. */

import * as vscode from 'vscode';
import { hitItems, HitItem, openHit, toLocation } from './locations';
import { Methods, RelatedParams, RelatedResult } from './protocol';
import { ServerManager } from './server';
import type { Settings } from './settings';

export async function relatedCommand(manager: ServerManager, settings: () => Settings): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined || editor.document.uri.scheme !== 'file') {
    void vscode.window.showInformationMessage('Semcode: put the cursor in a file of the workspace first.');
    return;
  }
  const { limit, view } = settings().related;
  const selection = editor.selection;
  const position = selection.isEmpty ? selection.active : selection.start;
  const params: RelatedParams = {
    textDocument: { uri: editor.document.uri.toString() },
    position: { line: position.line, character: position.character },
    limit,
  };
  if (!selection.isEmpty) {
    params.range = {
      start: { line: selection.start.line, character: selection.start.character },
      end: { line: selection.end.line, character: selection.end.character },
    };
  }
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: 'Semcode: finding related code' },
    () => manager.request<RelatedResult>(Methods.related, params),
  );
  if (result.chunk === null) {
    const why =
      result.why ??
      `nothing indexed covers line ${position.line + 1} yet (the file may be excluded, or still indexing)`;
    void vscode.window.showInformationMessage(`Semcode: ${why}.`);
    return;
  }
  const name = result.chunk.symbol || `line ${result.chunk.range.start.line + 1}`;
  if (result.results.length === 0) {
    void vscode.window.showInformationMessage(`Semcode: no code related to ${name} found.`);
    return;
  }
  if (view === 'peek') {
    await vscode.commands.executeCommand(
      'editor.action.showReferences',
      editor.document.uri,
      position,
      result.results.map(toLocation),
    );
    return;
  }
  const picker = vscode.window.createQuickPick<HitItem>();
  picker.title = `Semcode: code related to ${name}`;
  picker.placeholder = 'Filter the results';
  picker.matchOnDescription = true;
  picker.items = hitItems(result.results).map((item) => ({ ...item, alwaysShow: false }));
  picker.onDidAccept(() => {
    const hit = (picker.selectedItems[0] ?? picker.activeItems[0])?.hit;
    picker.hide();
    if (hit !== undefined) {
      openHit(hit).catch((e: unknown) => manager.explain(e));
    }
  });
  picker.onDidHide(() => picker.dispose());
  picker.show();
}

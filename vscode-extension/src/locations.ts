/** Hits as editor locations, and QuickPick items that open them. */

import * as vscode from 'vscode';
import { Folder, hitToItem } from './format';
import type { Hit, Range } from './protocol';

export interface HitItem extends vscode.QuickPickItem {
  hit?: Hit;
}

export function toRange(r: Range): vscode.Range {
  return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}

export function toLocation(hit: Hit): vscode.Location {
  return new vscode.Location(vscode.Uri.parse(hit.uri), toRange(hit.range));
}

export function workspaceFolders(): Folder[] {
  return (vscode.workspace.workspaceFolders ?? []).map((f) => ({ uri: f.uri.toString(), name: f.name }));
}

/** QuickPick items for hits; `alwaysShow`, since the server ranked them and the picker must not filter them. */
export function hitItems(hits: readonly Hit[]): HitItem[] {
  const folders = workspaceFolders();
  return hits.map((hit) => ({ ...hitToItem(hit, folders), alwaysShow: true, hit }));
}

/** An item that only says something (an error, "no results"); accepting it does nothing. */
export function messageItem(label: string, detail?: string): HitItem {
  return { label, detail, alwaysShow: true };
}

/** Open the hit's file with the cursor at the start of its range. */
export async function openHit(hit: Hit, preview = false): Promise<void> {
  const start = toRange(hit.range).start;
  await vscode.window.showTextDocument(vscode.Uri.parse(hit.uri), {
    selection: new vscode.Range(start, start),
    preview,
  });
}

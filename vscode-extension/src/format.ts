/** Pure conversions of server answers into what the UI shows: QuickPick items, status bar text, status summary. */

import type { Hit, IndexSummary, Status } from './protocol';
import type { ServerPhase } from './state';

export interface Folder {
  uri: string;
  name: string;
}

export interface ItemText {
  label: string;
  description: string;
  detail: string;
}

const KIND_ICONS: Record<string, string> = {
  function: 'symbol-function',
  method: 'symbol-method',
  class: 'symbol-class',
  struct: 'symbol-struct',
  interface: 'symbol-interface',
  enum: 'symbol-enum',
  module: 'symbol-module',
  section: 'symbol-string',
  block: 'symbol-namespace',
  text: 'symbol-file',
};

export function kindIcon(kind: string): string {
  return `$(${KIND_ICONS[kind] ?? 'symbol-misc'})`;
}

function decoded(uri: string): string {
  try {
    return decodeURIComponent(uri);
  } catch {
    return uri;
  }
}

/** A file URI relative to the workspace folder holding it ("src/a.py"; "name/src/a.py" with several folders). */
export function relativePath(uri: string, folders: readonly Folder[]): string {
  const target = decoded(uri);
  for (const folder of folders) {
    const root = decoded(folder.uri).replace(/\/$/, '');
    if (target.startsWith(root + '/')) {
      const rel = target.slice(root.length + 1);
      return folders.length > 1 ? `${folder.name}/${rel}` : rel;
    }
  }
  return target.replace(/^file:\/\//, '');
}

/** The first non-blank line of the preview, whitespace collapsed, cut at `max` characters. */
export function previewLine(preview: string, max = 120): string {
  const line = preview.split('\n').find((l) => l.trim() !== '') ?? '';
  const flat = line.trim().replace(/\s+/g, ' ');
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

/** label: icon + symbol (or the preview for unnamed blocks); description: path:line (1-based) and the signals that
 * placed the hit (the server's `reasons`: "definition", "path", "lower:test", ...); detail: preview. */
export function hitToItem(hit: Hit, folders: readonly Folder[]): ItemText {
  const where = `${relativePath(hit.uri, folders)}:${hit.range.start.line + 1}`;
  const preview = previewLine(hit.preview);
  const name = hit.symbol || preview || where;
  const reasons = (hit.reasons ?? []).join(' + ');
  return {
    label: `${kindIcon(hit.kind)} ${name}`,
    description: where,
    detail: [hit.symbol ? preview : '', reasons ? `(${reasons})` : ''].filter((s) => s !== '').join('  '),
  };
}

export interface StatusBarText {
  text: string;
  tooltip: string;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function statusBarText(p: ServerPhase): StatusBarText {
  switch (p.phase) {
    case 'idle':
      return { text: '$(search) Semcode', tooltip: 'Semcode: no folder open, nothing to index' };
    case 'starting':
      return { text: '$(sync~spin) Semcode', tooltip: 'Semcode: starting the server' };
    case 'restarting': {
      const seconds = Math.round(p.delayMs / 1000);
      return {
        text: '$(sync~spin) Semcode: restarting',
        tooltip: `Semcode: the server stopped (${plural(p.crashes, 'time')}); restarting in ${seconds} s`,
      };
    }
    case 'failed':
      return { text: '$(error) Semcode', tooltip: `Semcode is not running: ${p.message}` };
    case 'running': {
      const index = p.index;
      if (index === undefined) {
        return { text: '$(sync~spin) Semcode', tooltip: 'Semcode: loading' };
      }
      const counts = `${plural(index.files, 'file')}, ${plural(index.chunks, 'chunk')}`;
      const embedded = index.embedded ?? 1;
      if (index.state === 'indexing' && index.pending === 0 && embedded < 1) {
        const share = `${Math.floor(embedded * 100)}%`;
        return {
          text: `$(sync~spin) Semcode: embedding ${share}`,
          tooltip: `Semcode: every file is searchable by text (${counts}); semantic search covers ${share} so far`,
        };
      }
      if (index.state === 'indexing') {
        const left = index.pending > 0 ? ` ${plural(index.pending, 'file')} left` : '';
        return { text: `$(sync~spin) Semcode: indexing${left}`, tooltip: `Semcode: indexing (${counts} so far)` };
      }
      if (index.state === 'error') {
        return { text: '$(warning) Semcode', tooltip: `Semcode: ${p.lastError ?? 'indexing failed'}` };
      }
      return { text: '$(search) Semcode', tooltip: `Semcode: ready, ${counts}` };
    }
  }
}

/** A one-line summary for a notification. */
export function statusSummary(s: Status): string {
  const parts = [`${s.state}: ${plural(s.files, 'file')}, ${plural(s.chunks, 'chunk')}`];
  if (s.pending > 0) {
    parts.push(`${s.pending} pending`);
  }
  if (s.skipped > 0) {
    parts.push(`${s.skipped} skipped`);
  }
  parts.push(`model ${s.model ?? '(default)'}`);
  if (s.device) {
    parts.push(`device ${s.device}`);
  }
  const summary = `Semcode ${parts.join('; ')}.`;
  return s.lastError ? `${summary} ${s.lastError}` : summary;
}

/** The full status, one fact per line, for the output channel. */
export function statusDetails(s: Status): string {
  const lines = [
    `state: ${s.state}`,
    `files: ${s.files}, chunks: ${s.chunks}, pending: ${s.pending}, skipped: ${s.skipped}`,
    `model: ${s.model ?? '(default)'}`,
    `device: ${s.device ?? '(auto)'}`,
    `index: ${s.indexDir ?? '(none)'}`,
  ];
  for (const w of s.workspaces) {
    const building = w.vectorIndex === 'building' ? ', building the vector index' : '';
    const err = w.lastError ? `, error: ${w.lastError}` : '';
    lines.push(
      `folder ${w.root}: ${w.state}, ${w.files} files, ${w.chunks} chunks, ${w.skipped} skipped${building}${err}`,
    );
  }
  if (s.lastError) {
    lines.push(`last error: ${s.lastError}`);
  }
  return lines.join('\n');
}

/** The picker's title: says when results may be incomplete, and how much is embedded while vectors are filled in. */
export function searchTitle(index: IndexSummary, title = 'Semcode: Search'): string {
  const embedded = index.embedded ?? 1;
  if (embedded < 1 && index.pending === 0) {
    return `${title} (${Math.floor(embedded * 100)}% embedded: the rest is found by its text)`;
  }
  return index.state === 'indexing' ? `${title} (indexing: results may be incomplete)` : title;
}

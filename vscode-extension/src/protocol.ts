/**
 * The semcode server's custom requests and notifications (lsp_server/server.py), as TypeScript types.
 * Positions and ranges are LSP's: 0-based lines and UTF-16 columns.
 */

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export type SearchMode = 'hybrid' | 'semantic' | 'lexical';
export const SEARCH_MODES: readonly SearchMode[] = ['hybrid', 'semantic', 'lexical'];

/** One search or related-code result: a chunk of a file. */
export interface Hit {
  uri: string;
  range: Range;
  /** 0-1, higher is better: one scale for every mode (`score` is the mode's raw figure). */
  relevance: number;
  score: number;
  /** Qualified name ("Class.method"), or "" for blocks of top-level statements and text sections. */
  symbol: string;
  /** "function", "method", "class", "block", "section", ... */
  kind: string;
  language: string;
  /** The chunk's first lines. */
  preview: string;
  /** "semantic", "lexical" or both. */
  reasons: string[];
}

/** The index summary sent with every answer. */
export interface IndexSummary {
  state: IndexState;
  files: number;
  chunks: number;
  pending: number;
  /** Share of the chunks that have vectors (below 1 while they are embedded: every file is searchable by text). */
  embedded?: number;
}

export type IndexState = 'indexing' | 'ready' | 'error';

export interface SearchParams {
  query: string;
  limit?: number;
  mode?: SearchMode;
  paths?: string[];
  languages?: string[];
}

export interface SearchResult {
  results: Hit[];
  index: IndexSummary;
}

export interface RelatedParams {
  textDocument: { uri: string };
  position: Position;
  /** The selection, when there is one (the server uses `position`). */
  range?: Range;
  limit?: number;
}

export interface RelatedResult {
  results: Hit[];
  /** The chunk the query was made of; null when nothing indexed covers the position. */
  chunk: { uri: string; range: Range; symbol: string } | null;
  /** With no chunk: what was wrong (no such file, a file the index does not hold and why, a line past its end). */
  why?: string;
  index: IndexSummary;
}

export interface FolderStatus {
  root: string;
  state: IndexState;
  files: number;
  chunks: number;
  pending: number;
  skipped: number;
  indexDir: string;
  /** Present while an approximate vector index is being built (searches stay exact meanwhile). */
  vectorIndex?: 'building';
  lastError?: string;
}

export interface Status extends IndexSummary {
  skipped: number;
  model: string | null;
  device: string | null;
  indexDir: string | null;
  lastError?: string;
  workspaces: FolderStatus[];
}

export interface IndexChanged {
  uri: string;
  changed: number;
  deleted: number;
  skipped: string[];
  index: IndexSummary;
}

export const Methods = {
  search: 'semcode/search',
  related: 'semcode/related',
  status: 'semcode/status',
  indexChanged: 'semcode/indexChanged',
  /** A `workspace/executeCommand` command. */
  reindex: 'semcode.reindex',
} as const;

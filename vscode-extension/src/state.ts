/** Where the language server is, as the status bar and the commands see it. */

import type { IndexSummary } from './protocol';

export type ServerPhase =
  /** No workspace folder: nothing to index, no server. */
  | { phase: 'idle' }
  | { phase: 'starting' }
  | { phase: 'running'; index?: IndexSummary; lastError?: string }
  /** It crashed; the next start is in `delayMs`. */
  | { phase: 'restarting'; delayMs: number; crashes: number }
  /** It cannot start or crashed too often; `setting` is the one to fix, when known. */
  | { phase: 'failed'; message: string; setting?: string };

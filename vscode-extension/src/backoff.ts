/** When to restart a server that crashed: exponential backoff, a limit on crashes in a row, reset by a stable run. */

export interface BackoffPolicy {
  /** Delay before the first restart. */
  initialMs: number;
  /** Each further restart waits this many times longer... */
  factor: number;
  /** ...up to this. */
  maxMs: number;
  /** Give up after this many crashes in a row. */
  maxCrashes: number;
  /** A run at least this long resets the count. */
  stableMs: number;
}

export const DEFAULT_POLICY: BackoffPolicy = {
  initialMs: 1000,
  factor: 2,
  maxMs: 30_000,
  maxCrashes: 5,
  stableMs: 60_000,
};

export type CrashDecision = { restart: true; delayMs: number; crashes: number } | { restart: false; crashes: number };

/** Counts crashes in a row; `now` is injectable for tests. */
export class CrashTracker {
  private crashes = 0;
  private startedAt: number | undefined;

  constructor(
    private readonly policy: BackoffPolicy = DEFAULT_POLICY,
    private readonly now: () => number = Date.now,
  ) {}

  /** The server is up (initialized). */
  started(): void {
    this.startedAt = this.now();
  }

  /** The server went away on its own: restart it, and when. */
  crashed(): CrashDecision {
    if (this.startedAt !== undefined && this.now() - this.startedAt >= this.policy.stableMs) {
      this.crashes = 0;
    }
    this.startedAt = undefined;
    this.crashes += 1;
    if (this.crashes > this.policy.maxCrashes) {
      return { restart: false, crashes: this.crashes };
    }
    return { restart: true, delayMs: backoffDelay(this.crashes, this.policy), crashes: this.crashes };
  }

  /** A deliberate (re)start: settings changed, or the user asked. */
  reset(): void {
    this.crashes = 0;
    this.startedAt = undefined;
  }
}

/** The delay before restart number `attempt` (1-based). */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_POLICY): number {
  return Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, attempt - 1));
}

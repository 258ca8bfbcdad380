/**
 * Pause, resume and stop for a training run, as the trainer's `gate` and `signal`: a pause
 * takes effect between two steps (the step in flight finishes), `onPaused` fires once the loop
 * really waits; a stop aborts the signal and releases a paused loop, so the trainer saves a
 * checkpoint and returns with what was learnt. Nothing is torn down: models and the GPU device stay.
 */
export type RunState = 'running' | 'pausing' | 'paused' | 'stopping';

export class RunControl {
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private wantPause = false;
  state: RunState = 'running';

  constructor(private readonly onState: (state: RunState) => void = () => undefined) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  private set(state: RunState) {
    this.state = state;
    this.onState(state);
  }

  pause(): void {
    if (this.abort.signal.aborted || this.wantPause) return;
    this.wantPause = true;
    this.set('pausing');
  }

  resume(): void {
    if (!this.wantPause || this.abort.signal.aborted) return;
    this.wantPause = false;
    const wake = this.wake;
    this.wake = undefined;
    this.set('running');
    wake?.();
  }

  stop(): void {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.set('stopping');
    this.wake?.();
    this.wake = undefined;
  }

  /** Awaited by the trainer before each step. */
  readonly gate = async (): Promise<void> => {
    if (!this.wantPause || this.abort.signal.aborted) return;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      this.set('paused');
    });
  };
}

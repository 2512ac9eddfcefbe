/**
 * Group commit: work submitted while a round runs waits for the next round, which takes all of it at
 * once. One store round trip then serves every caller that arrived meanwhile, however they trickle in.
 */
export class Rounds<T> {
  private waiting: { items: T[]; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private running?: Promise<void>;

  constructor(private readonly round: (items: T[]) => Promise<void>) {}

  /** Resolves when the round that took these items succeeded; rejects with its error. */
  submit(items: T[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ items, resolve, reject });
      this.running ??= this.run();
    });
  }

  /** Settles when no round is running. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async run(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0);
      try {
        await this.round(batch.flatMap((b) => b.items));
        batch.forEach((b) => b.resolve());
      } catch (err) {
        batch.forEach((b) => b.reject(err));
      }
    }
    this.running = undefined;
  }
}

import { FaultlineError } from '../errors.js';

/** An event enqueue() refuses (nothing of the batch is written): a bad event, an unknown endpoint, a stopped deliverer. */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
  constructor(
    readonly code: 'bad_event' | 'unknown_endpoint' | 'shut_down',
    message: string,
  ) {
    super(message);
  }
}

export const conflict = (code: string, message: string) => new FaultlineError(code, 409, message);

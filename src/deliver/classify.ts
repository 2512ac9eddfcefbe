import type { Sent } from './transport.js';

/**
 * What an attempt's result means, decided once: 2xx delivered; 410 Gone disables the endpoint; 429, 5xx,
 * timeouts and network failures are retried; every other 3xx and 4xx is permanent (redirects are never
 * followed: a webhook URL that moved is a configuration error, and following one is an SSRF path).
 */
export type ResultClass = 'ok' | 'http_3xx' | 'http_4xx' | 'http_429' | 'http_5xx' | 'gone' | 'timeout' | 'network';
export type Disposition = 'delivered' | 'retry' | 'permanent' | 'gone';

export interface Classified {
  result: ResultClass;
  disposition: Disposition;
  /** Whether the endpoint looked unhealthy: only these count towards opening its circuit breaker. */
  unhealthy: boolean;
}

export function classify(status: number, failure?: 'timeout' | 'network'): Classified {
  if (failure) return { result: failure, disposition: 'retry', unhealthy: true };
  if (status >= 200 && status < 300) return { result: 'ok', disposition: 'delivered', unhealthy: false };
  if (status === 410) return { result: 'gone', disposition: 'gone', unhealthy: false };
  if (status === 429) return { result: 'http_429', disposition: 'retry', unhealthy: true };
  if (status >= 500) return { result: 'http_5xx', disposition: 'retry', unhealthy: true };
  if (status >= 300 && status < 400) return { result: 'http_3xx', disposition: 'permanent', unhealthy: false };
  // 4xx and anything unexpected (1xx never reaches here): the receiver refused this request as it is.
  return { result: 'http_4xx', disposition: 'permanent', unhealthy: false };
}

/** What went wrong with an attempt, for a person: never the URL's path or query. */
export function describe(sent: Sent, c: Classified): string {
  if (sent.failure) return `${sent.failure.kind}: ${sent.failure.message}`;
  switch (c.result) {
    case 'ok':
      return '';
    case 'http_3xx':
      return `HTTP ${sent.status}: redirect${sent.location ? ` to ${sent.location.slice(0, 200)}` : ''} not followed; update the endpoint's url`;
    case 'gone':
      return 'HTTP 410 Gone: the endpoint is disabled';
    case 'http_429':
      return `HTTP 429${sent.retryAfter ? ` (Retry-After: ${sent.retryAfter})` : ''}`;
    default:
      return `HTTP ${sent.status}${sent.retryAfter ? ` (Retry-After: ${sent.retryAfter})` : ''}`;
  }
}

import type { FastifyInstance, FastifyRequest } from 'fastify';

/** An answer of the JSON API that was not a success, carried to the page as it was (status, code, message). */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The answer's body (e.g. a rules reload's list of errors). */
    readonly body?: unknown,
  ) {
    super(message);
  }
}

/**
 * The dashboard reads and acts only through the JSON API, in process (`app.inject`, no socket): a page can
 * never disagree with the API, and the viewer's credentials (the `faultline_token` cookie or a Bearer header)
 * go along, so the API's own scope checks decide what the viewer may see and do.
 */
export class ApiClient {
  constructor(
    private readonly app: FastifyInstance,
    private readonly req: FastifyRequest,
  ) {}

  get<T>(url: string): Promise<T> {
    return this.call<T>('GET', url);
  }

  post<T>(url: string, body?: unknown): Promise<T> {
    return this.call<T>('POST', url, body);
  }

  delete(url: string): Promise<unknown> {
    return this.call('DELETE', url);
  }

  /** Like get, but a failure comes back as a value: for page sections that may be missing (escalation starting). */
  async optional<T>(url: string): Promise<T | ApiError> {
    return this.get<T>(url).catch((err: unknown) => {
      if (err instanceof ApiError && err.status !== 401 && err.status !== 403) return err;
      throw err;
    });
  }

  private async call<T>(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    const { cookie, authorization } = this.req.headers;
    if (cookie) headers.cookie = cookie;
    if (authorization) headers.authorization = authorization;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.app.inject({ method, url, headers, payload: body === undefined ? undefined : JSON.stringify(body) });
    if (res.statusCode === 204) return undefined as T;
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      throw new ApiError(502, 'bad_api_answer', `${method} ${url} answered ${res.statusCode} with a body that is not JSON`);
    }
    if (res.statusCode >= 400) {
      const e = (parsed as { error?: { code?: string; message?: string } }).error;
      throw new ApiError(res.statusCode, e?.code ?? 'error', e?.message ?? `${method} ${url} answered ${res.statusCode}`, parsed);
    }
    return parsed as T;
  }
}

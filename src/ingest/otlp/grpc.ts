import * as grpc from '@grpc/grpc-js';
import { createServer, type Server as TcpServer } from 'node:net';
import { toFaultlineError } from '../../api/app.js';
import type { Auth } from '../../api/auth.js';
import type { Logger } from '../../log/index.js';
import type { IngestPipeline } from '../pipeline.js';
import { FaultlineError } from '../../errors.js';
import { encodeResponse, encodeRetryStatus, type Signal } from './codec.js';
import { grpcCodeOf } from './http.js';

const SERVICES: Record<Signal, string> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
};

const identity = (b: Buffer) => b;

/**
 * OTLP/gRPC receiver: the three Export services, decoded by the same pipeline as OTLP/HTTP protobuf.
 * Messages arrive as raw bytes (grpc-js handles framing and gzip) so there is one decoder for both.
 */
export class OtlpGrpcServer {
  private server?: grpc.Server;
  private tcp?: TcpServer;

  constructor(
    private readonly pipeline: IngestPipeline,
    private readonly maxMessageBytes: number,
    private readonly log: Logger,
    /** Checks the `authorization` metadata (`Bearer <token>`) for scope ingest. */
    private readonly auth?: Auth,
    /** A connection with no traffic for this long is closed (grpc-js itself keeps silent connections for ever). */
    private readonly idleTimeoutMs = 120_000,
  ) {}

  async start(host: string, port: number): Promise<number> {
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.maxMessageBytes,
    });
    for (const [signal, path] of Object.entries(SERVICES) as [Signal, string][]) {
      const definition: grpc.ServiceDefinition = {
        Export: {
          path,
          requestStream: false,
          responseStream: false,
          requestSerialize: identity,
          requestDeserialize: identity,
          responseSerialize: identity,
          responseDeserialize: identity,
        },
      };
      server.addService(definition, { Export: this.exportHandler(signal) });
    }
    // faultline accepts the TCP connections and hands them to grpc-js, so that a client that connects and
    // then sends nothing (or stops half-way) is cut off like on the HTTP ports.
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const tcp = createServer((socket) => {
      socket.setTimeout(this.idleTimeoutMs, () => socket.destroy());
      injector.injectConnection(socket);
    });
    const bound = await new Promise<number>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, host, () => resolve((tcp.address() as { port: number }).port));
    });
    this.server = server;
    this.tcp = tcp;
    return bound;
  }

  private exportHandler(signal: Signal): grpc.handleUnaryCall<Buffer, Buffer> {
    return (call, callback) => {
      try {
        const authorization = call.metadata.get('authorization').map(String);
        this.auth?.require({ headers: { authorization: authorization[0] } }, 'ingest');
      } catch (err) {
        const e = toFaultlineError(err);
        return callback({ code: grpcCodeOf(e.status), details: e.message });
      }
      let release: () => void;
      try {
        // grpc-js has read the message already; refusing it here still spares the loop its decoding.
        release = this.pipeline.enter(signal === 'logs' ? 'evidence' : 'bulk', call.request.length);
      } catch (err) {
        return callback(refusal(toFaultlineError(err)));
      }
      this.pipeline.otlp(signal, call.request, 'protobuf').finally(release).then(
        (result) => callback(null, Buffer.from(encodeResponse(signal, result))),
        (err: unknown) => {
          const e = toFaultlineError(err);
          if (e.code === 'internal') this.log.error('gRPC export failed', { signal, error: err });
          else if (e.status < 500 && e.status !== 429) this.pipeline.metrics.badRequests.inc({ endpoint: `grpc/${signal}`, code: e.code });
          const metadata = new grpc.Metadata();
          if (e.retryAfterS !== undefined) metadata.set('retry-after', String(e.retryAfterS));
          callback({ code: grpcCodeOf(e.status), details: e.message, metadata });
        },
      );
    };
  }

  /** Stops accepting calls and waits for running ones (bounded); safe before start and twice. */
  async shutdown(timeoutMs = 5000): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.tcp?.close();
    this.tcp = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, timeoutMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * The answer to a call refused by admission: overload is RESOURCE_EXHAUSTED with RetryInfo (retryable
 * per the OTLP spec only with it) and a retry-after, the store's backlog UNAVAILABLE as before.
 */
function refusal(e: FaultlineError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (e.retryAfterS !== undefined) metadata.set('retry-after', String(e.retryAfterS));
  if (e.code !== 'overloaded') return { code: grpcCodeOf(e.status), details: e.message, metadata };
  const code = grpc.status.RESOURCE_EXHAUSTED;
  metadata.set('grpc-status-details-bin', Buffer.from(encodeRetryStatus(code, e.message, e.retryAfterS ?? 1)));
  return { code, details: e.message, metadata };
}

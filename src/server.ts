import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { Auth, OpenApiRegistry, apiRoutes, checkRoutes, createApp, faultRoutes, targetRoutes, timelineRoutes, type RouteTable } from './api/index.js';
import { clientTimeouts } from './api/app.js';
import { LiveFeed, dashboardRoutes } from './dashboard/index.js';
import { DEFAULT_DETECTOR, Detector, DEFAULT_ERROR_RATE, ErrorRateMonitor, ResourceMonitor, restoreDetector, type Ownership, type PhiOptions } from './detect/index.js';
import { CheckMonitor } from './detect/checks.js';
import { restoreChecks } from './detect/check-store.js';
import { FaultReader, FaultWriter, repairFaultCopies } from './faults/index.js';
import { RulesManager } from './rules/index.js';
import { Escalator, Silences, escalationRoutes, type EventSink } from './escalate/index.js';
import { Deliverer, deliveryRoutes } from './deliver/index.js';
import type { Config } from './config/index.js';
import { CheckSchema } from './config/schema.js';
import { IngestAdmission, LoopDelay } from './ingest/admission.js';
import { IngestPipeline } from './ingest/pipeline.js';
import { OtlpGrpcServer } from './ingest/otlp/grpc.js';
import { otlpHttpRoutes } from './ingest/otlp/http.js';
import { CheckRegistry } from './ingest/ping/checks.js';
import { pingRoutes } from './ingest/ping/routes.js';
import type { Logger } from './log/index.js';
import { Registry, ingestMetrics } from './metrics/index.js';
import { VERSION } from './version.js';
import { migrate, openStore, type Store, type TableName } from './store/index.js';
import { Writer } from './writer/index.js';
import { Cluster, clusterRoutes, followCheckChanges, instanceId } from './cluster/index.js';

/** How long start-up waits for the previous run's write-ahead log to reach the store before detection is rebuilt. */
const PREVIOUS_RUN_WAIT_MS = 30_000;

export { VERSION };

export interface Ports {
  http: number;
  otlpHttp: number;
  otlpGrpc: number;
}

/**
 * The faultline service: store, durable writer, receivers and API, with one start/shutdown contract.
 * `start()` returns once every listener is bound; `shutdown()` stops intake, flushes the write-ahead log
 * to the store and closes it, and is safe to call twice or before start.
 */
export class FaultlineServer {
  private store?: Store;
  private writer?: Writer;
  private apps: FastifyInstance[] = [];
  private grpc?: OtlpGrpcServer;
  private rules?: RulesManager;
  private detector?: Detector;
  private checkMonitor?: CheckMonitor;
  private faultWriter?: FaultWriter;
  private monitorTimer?: NodeJS.Timeout;
  private loopDelay?: LoopDelay;
  escalator?: Escalator;
  /** Where escalation's events go (the webhook deliverer, once configured). */
  deliverer?: EventSink;
  private webhooks?: Deliverer;
  /** Set when `cluster:` is configured: this instance shares the work with others on the same store. */
  cluster?: Cluster;
  private readonly startedAt = Date.now();
  private stopped?: Promise<void>;
  readonly registry = new Registry();
  /** API tokens; the dashboard checks its pages' scope with the same instance. */
  readonly auth: Auth;
  /** Every route of the API and ingest listeners, for the OpenAPI document. */
  readonly openapi = new OpenApiRegistry();
  /** The API listener's fastify app, once started (the dashboard adds its pages to it). */
  api?: FastifyInstance;
  /** The OTLP/HTTP listener's app, once started. */
  otlp?: FastifyInstance;
  /** What open dashboard pages hear about (faults opened and resolved, escalation's events). */
  readonly feed = new LiveFeed();

  constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {
    this.auth = new Auth(config.auth);
  }

  async start(): Promise<Ports> {
    const { config, log } = this;
    const metrics = ingestMetrics(this.registry);
    // Rules are checked before anything listens: a broken rules file stops start-up like a broken config.
    const rules = (this.rules = new RulesManager(config.rules.file, log));
    log.info('rules loaded', { version: rules.current.version, rules: rules.current.rules.length, file: config.rules.file });
    if (config.rules.watch) rules.watch();
    const store = (this.store = await openStore(config));
    log.info('store opened', { kind: store.kind, location: store.location, database: store.database });
    // Templates were checked with the config; the deliverer reads the store only from start() on.
    const clusterId = config.cluster ? instanceId(config.cluster, config.data_dir) : undefined;
    const webhooks = (this.webhooks = new Deliverer(store, config.webhooks, log, this.registry, { instance: clusterId }));
    this.deliverer = webhooks;

    const writer = (this.writer = new Writer(
      store,
      {
        dir: resolve(config.data_dir, 'wal'),
        batchRows: config.writer.batch_rows,
        flushIntervalMs: config.writer.flush_interval_ms,
        maxWalBytes: config.writer.max_wal_bytes,
        fsync: config.writer.fsync,
      },
      metrics,
      log,
    ));
    writer.start();
    this.registry.gauge('faultline_wal_bytes', 'Acknowledged bytes in the write-ahead log, not yet in the store.', () => writer.backlogBytes);
    this.registry.gauge('faultline_queue_segments', 'Write-ahead log segments waiting for the store (queue depth).', () => writer.backlogSegments);
    this.registry.gauge('faultline_store_healthy', 'Whether writes to the store succeed (1) or fail (0).', () => (writer.healthy ? 1 : 0));

    const loopDelay = (this.loopDelay = new LoopDelay());
    loopDelay.start();
    const { ingest } = config;
    const admission = new IngestAdmission(
      { maxEventLoopDelayMs: ingest.max_event_loop_delay_ms, maxInflightRequests: ingest.max_inflight_requests, maxInflightBytes: ingest.max_inflight_bytes, retryAfterS: ingest.retry_after_s },
      loopDelay,
      metrics.shed,
      log,
    );
    this.registry.gauge('faultline_event_loop_delay_ms', 'How late the event loop runs (ms, smoothed over ~0.5 s): what admission control sheds ingest on.', () => Math.round(loopDelay.ms * 10) / 10);
    this.registry.gauge('faultline_ingest_inflight_requests', 'Ingest requests admitted and not yet answered.', () => admission.requests);
    this.registry.gauge('faultline_ingest_inflight_bytes', 'Declared body bytes of the ingest requests admitted and not yet answered.', () => admission.bytes);
    const pipeline = new IngestPipeline(writer, metrics, config, admission);
    const faultWriter = (this.faultWriter = new FaultWriter(store, log));
    // Ownership is asked only once the cluster has joined (start-up below); before, nothing is decided.
    const detector = (this.detector = this.createDetector(faultWriter, rules, { owns: (key) => !this.config.cluster || (this.cluster?.owns(key) ?? false) }));
    detector.openedListeners.push((f) => this.feed.faultOpened(f));
    detector.resolvedListeners.push((f) => this.feed.faultResolved(f));
    const { error_rate: er, resource: rs } = config.detection;
    const checkMonitor = (this.checkMonitor = new CheckMonitor(detector, config.checks, log));
    const errorRates = new ErrorRateMonitor(detector, {
      ...DEFAULT_ERROR_RATE,
      bucketMs: er.bucket_ms,
      windowBuckets: er.window_buckets,
      minSpans: er.min_spans,
      minErrors: er.min_errors,
      factor: er.factor,
      minIncrease: er.min_increase,
    });
    this.registry.gauge('faultline_error_rate_late_counts', 'Other instances\' span counts that arrived after their bucket was judged (cluster).', () => errorRates.lateCounts);
    const resources = new ResourceMonitor(detector, {
      lookbackMs: rs.lookback_ms,
      minSamples: rs.min_samples,
      horizonMs: rs.horizon_ms,
      minRatio: rs.min_ratio,
      minFit: rs.min_fit,
      refuteAfterMs: rs.refute_after_ms,
    });
    const judge = (tables: Map<TableName, object[]>, at: number) => {
      detector.observe(tables, at);
      errorRates.observe(tables, at);
      checkMonitor.observe(tables);
    };
    pipeline.onDurable = (tables, at) => {
      this.cluster?.ingested(tables);
      judge(tables, at);
    };
    const checks = new CheckRegistry(pipeline, config);

    const appOpts = {
      maxBodyBytes: config.server.max_body_bytes,
      maxDecompressedBytes: config.server.max_decompressed_bytes,
      log,
      metrics,
      timeouts: clientTimeouts(config.server),
    };
    const api = (this.api = createApp({ ...appOpts, storeReady: () => this.storeReady }));
    const table: RouteTable = { app: api, registry: this.openapi, auth: this.auth, listener: 'http' };
    let otlpHttpUrl: string | undefined;
    apiRoutes(table, { store, writer, registry: this.registry, version: VERSION, otlpHttpUrl: () => otlpHttpUrl });
    targetRoutes(table, { store, detector: () => this.detector });
    faultRoutes(table, { store, rules, detector: () => this.detector });
    timelineRoutes(table, { store, rules });
    const silences = new Silences(store);
    escalationRoutes(table, { escalator: () => this.escalator, silences });
    deliveryRoutes(table, { deliverer: () => webhooks });
    pingRoutes(table, pipeline, checks, { autoCreate: config.ping.auto_create, maxLogBytes: config.ping.max_log_bytes });
    checkRoutes(table, { store, registry: checks, monitor: checkMonitor });
    const otlp = (this.otlp = createApp(appOpts));
    otlpHttpRoutes({ app: otlp, registry: this.openapi, auth: this.auth, listener: 'otlp_http' }, pipeline);
    let apiAddress = '';
    clusterRoutes(table, { cluster: () => this.cluster, detector: () => this.detector, standalone: () => ({ address: apiAddress, version: VERSION, startedAt: this.startedAt }) });
    dashboardRoutes(api, { app: api, feed: this.feed, auth: this.auth, log });
    this.apps = [api, otlp];

    const host = config.server.host;
    if (!this.auth.enabled)
      log.warn('no API tokens configured (auth.tokens): listening on loopback only, and every local user may read and change everything', { host });
    else log.info('API tokens required', { tokens: config.auth.tokens.map((t) => `${t.name}(${t.scopes.join('+')})`).join(',') });
    const http = await listen(api, host, config.server.http_port);
    const otlpHttp = await listen(otlp, host, config.server.otlp_http_port);
    otlpHttpUrl = `http://${host.includes(':') ? `[${host}]` : host}:${otlpHttp}`;
    apiAddress = `http://${host.includes(':') ? `[${host}]` : host}:${http}`;
    if (config.cluster && clusterId)
      // How far behind the store this instance's log is, about: the segments waiting beyond the one being written.
      this.cluster = new Cluster(store, { ...config.cluster, instance_id: clusterId, address: config.cluster.address ?? apiAddress }, VERSION, log, () =>
        Math.max(0, writer.backlogSegments - 1) * config.writer.flush_interval_ms,
        () => writer.insertLagMs,
      );
    this.grpc = new OtlpGrpcServer(pipeline, config.server.max_decompressed_bytes, log, this.auth, config.server.idle_timeout_ms);
    const otlpGrpc = await this.grpc.start(host, config.server.otlp_grpc_port);
    log.info('faultline listening', { version: VERSION, host, http, otlp_http: otlpHttp, otlp_grpc: otlpGrpc });
    this.preparing = this.prepareStore(store, checks).then(
      async () => {
        writer.storeIsReady();
        // Detection is rebuilt from the store: what the last run acknowledged (an exit it never judged) goes in first.
        if (!(await writer.previousRunWritten(PREVIOUS_RUN_WAIT_MS)))
          log.warn('the write-ahead log of the previous run is not all in the store yet; rebuilding detection without waiting longer', { waited_ms: PREVIOUS_RUN_WAIT_MS });
        await repairFaultCopies(store, log).catch((err) => log.error('cannot check the fault list\'s copies of faults', { error: err }));
        // Ownership is known before anything is restored or decided (an exit left undecided is decided by its owner).
        await this.cluster?.start();
        await webhooks.start().catch((err) => log.error('webhook delivery could not start', { error: err }));
        await this.startEscalation(store, silences, detector, () => restoreDetector(detector, store, new FaultReader(store), rules.current, log));
        detector.start();
        this.cluster?.attach({
          detector,
          escalator: () => this.escalator,
          deliverer: webhooks,
          judge,
          errorRates,
          relayMs: config.writer.flush_interval_ms + (config.cluster?.tail_ms ?? 0),
          checks: checkMonitor,
          checksChanged: followCheckChanges(checks, checkMonitor, log),
        });
        await restoreChecks(checkMonitor, store, log).catch((err) => log.error('check state could not be rebuilt from the store', { error: err }));
        checkMonitor.start();
        this.monitorTimer = setInterval(() => {
          errorRates.tick();
          resources.tick();
        }, 1000);
        this.monitorTimer.unref();
      },
      () => undefined,
    );
    return { http, otlpHttp, otlpGrpc };
  }

  private preparing?: Promise<void>;
  /** Set once the store answered and its migrations are applied (the API listens before). */
  private storeReady = false;
  private readonly abort = new AbortController();

  /**
   * Migrates the store and loads what ingest needs from it, retrying while the store is unreachable:
   * faultline keeps accepting (into the write-ahead log, then with 503) rather than refusing to start.
   */
  private async prepareStore(store: Store, checks: CheckRegistry): Promise<void> {
    for (let attempt = 1, delay = 500; ; attempt++, delay = Math.min(delay * 2, 10_000)) {
      try {
        const report = await migrate(store, this.config.store.retention_days);
        if (report.applied.length) this.log.info('migrations applied', { applied: report.applied.join(',') });
        if (report.retentionChanged.length) this.log.info('retention changed', { tables: report.retentionChanged.join(',') });
        await checks.load(store, (c) => this.checkMonitor && c.input && defineStoredCheck(this.checkMonitor, c.input, this.log));
        if (attempt > 1) this.log.info('store ready', { attempts: attempt });
        this.storeReady = true;
        return;
      } catch (err) {
        if (this.abort.signal.aborted) throw err;
        this.log.warn('store not ready; ingest goes to the write-ahead log meanwhile, retrying', {
          location: store.location,
          attempt,
          retry_in_ms: delay,
          error: err,
        });
        await sleep(delay, undefined, { signal: this.abort.signal }).catch(() => undefined);
        if (this.abort.signal.aborted) throw err;
      }
    }
  }

  /** Escalation listens before detection state is rebuilt: a fault decided at start (an exit while faultline was down) is acted on too. */
  private async startEscalation(store: Store, silences: Silences, detector: Detector, restoreDetection: () => Promise<void>): Promise<void> {
    await this.untilStoreAnswers('silences', () => silences.load());
    const sink: EventSink = {
      enqueue: (events) => {
        this.feed.escalated(events);
        return this.deliverer ? this.deliverer.enqueue(events) : Promise.reject(new Error('no webhook deliverer configured'));
      },
    };
    const escalator = new Escalator(this.config.escalation, sink, silences, store, this.log);
    // The cluster has joined: what is rebuilt (actions rearmed, groups recalled, untold faults told) is this instance's share only.
    if (this.cluster) escalator.ownership = this.cluster;
    escalator.holdUntilRestored();
    detector.openedListeners.push((f) => escalator.opened(f));
    detector.resolvedListeners.push((f) => escalator.resolved(f));
    detector.newSignatureListeners.push((sig, first) => escalator.newSignature(sig, first));
    detector.recurrenceListeners.push((f, before) => void escalator.recurred(f, before));
    await this.untilStoreAnswers('detection state', restoreDetection);
    await this.untilStoreAnswers('supervisor actions', () => escalator.restore(detector.open.values()));
    this.escalationTimer = setInterval(() => escalator.tick(), 250);
    this.escalationTimer.unref();
    this.escalator = escalator;
  }

  private escalationTimer?: NodeJS.Timeout;

  /** Start-up reads of the store, retried while it does not answer (it answered the migrations a moment ago). */
  private async untilStoreAnswers(what: string, read: () => Promise<void>): Promise<void> {
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        return await read();
      } catch (err) {
        if (this.abort.signal.aborted) throw err;
        this.log.warn(`cannot read ${what} from the store at start; retrying`, { error: err, retry_in_ms: delay });
        await sleep(delay, undefined, { signal: this.abort.signal }).catch(() => undefined);
        if (this.abort.signal.aborted) throw err;
      }
    }
  }

  private createDetector(writer: FaultWriter, rules: RulesManager, ownership: Ownership): Detector {
    const d = this.config.detection;
    const phiOf = (p: Partial<typeof d.phi>): Partial<PhiOptions> =>
      Object.fromEntries(
        Object.entries({
          threshold: p.threshold,
          minStdDevMs: p.min_std_dev_ms,
          acceptablePauseMs: p.acceptable_pause_ms,
          maxSamples: p.max_samples,
          minSamples: p.min_samples,
          defaultIntervalMs: p.default_interval_ms,
          graceMs: p.grace_ms,
        }).filter(([, v]) => v !== undefined),
      );
    const base: PhiOptions = { ...DEFAULT_DETECTOR.phi, ...phiOf(d.phi) };
    // In a cluster a target's evidence often reaches its owner through the store: in batches, as the instance
    // that took it flushes its write-ahead log and the owner's tail reads it. φ tolerates that much more pause.
    const relayed = this.config.cluster ? this.config.writer.flush_interval_ms + this.config.cluster.tail_ms : 0;
    const withRelay = (p: PhiOptions): PhiOptions => ({ ...p, acceptablePauseMs: p.acceptablePauseMs + relayed });
    const perService = new Map(Object.entries(d.services).map(([name, p]) => [name, withRelay({ ...base, ...phiOf(p) })]));
    const fallback = withRelay(base);
    const detector = new Detector(
      {
        rules: () => rules.current,
        writer,
        log: this.log,
        opened: this.registry.counter('faultline_faults_opened_total', 'Faults opened, by kind.'),
        phiFor: (service) => perService.get(service) ?? fallback,
        ownership,
      },
      { ...DEFAULT_DETECTOR, phi: fallback, massSilenceRatio: d.mass_silence_ratio, massSilenceHoldMs: d.mass_silence_hold_ms, restartGraceMs: d.restart_grace_ms, relayMs: relayed },
    );
    this.registry.gauge('faultline_detection_targets', 'Targets tracked by detection.', () => detector.targets.size);
    this.registry.gauge('faultline_open_faults', 'Faults open now.', () => detector.open.size);
    return detector;
  }

  shutdown(): Promise<void> {
    this.stopped ??= this.stop();
    return this.stopped;
  }

  private async stop(): Promise<void> {
    // Intake first (no new acknowledgements), then the backlog, then the store.
    this.abort.abort();
    await Promise.all([...this.apps.map((a) => a.close()), this.grpc?.shutdown()]);
    // A store still being prepared gets its chance to take the backlog (an unreachable one fails fast).
    await this.preparing?.catch((err) => this.log.error('detection could not start', { error: err }));
    this.rules?.close();
    clearInterval(this.monitorTimer);
    clearInterval(this.escalationTimer);
    this.loopDelay?.stop();
    // Leaving: the others take this instance's targets at once rather than after the lease.
    await this.cluster?.stop().catch((err) => this.log.warn('could not say goodbye to the cluster', { error: err }));
    this.checkMonitor?.shutdown();
    this.detector?.shutdown();
    if (this.writer) {
      const { leftBytes } = await this.writer.shutdown();
      if (leftBytes > 0) this.log.warn('store unreachable at shutdown; rows stay in the write-ahead log for the next start', { bytes: leftBytes });
    }
    await this.faultWriter?.shutdown();
    await this.webhooks?.shutdown();
    await this.store?.close();
    this.log.info('faultline stopped');
  }
}

/** A check made through the API, read back from the store; one that no longer validates is skipped, loudly. */
function defineStoredCheck(monitor: CheckMonitor, input: Record<string, unknown>, log: Logger): void {
  const spec = CheckSchema.safeParse(input);
  if (spec.success) monitor.define(spec.data, 0);
  else log.error('a check created through the API no longer validates; it is not scheduled', { slug: String(input.slug), error: spec.error.issues[0]?.message });
}

async function listen(app: FastifyInstance, host: string, port: number): Promise<number> {
  await app.listen({ host, port });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : port;
}

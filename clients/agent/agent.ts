/**
 * The relay agent wired together: job API → relays (one ffmpeg each) →
 * statuses and probe results → reporter → status center. Reports go out once
 * per interval with every process, plus, rate-limited, as soon as a process
 * changes status.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Heartbeat } from '#contract/heartbeat';
import { HEARTBEAT_LIMITS } from '#contract/heartbeat';
import type { Logger } from '#contract/log';
import type { AddOutcome, RelayRegistry } from './api.js';
import { createJobApi } from './api.js';
import { createChangeBudget } from './change-budget.js';
import type { AgentConfig } from './config.js';
import { CHANGE_BURST } from './config.js';
import type { RelayJob } from './job.js';
import { originOf } from './job.js';
import { prometheusText } from './metrics.js';
import type { ProbeResult, ProbeTarget } from './probes.js';
import { originTarget, probeProcessName, probeTcp } from './probes.js';
import type { Relay } from './relay.js';
import { startRelay } from './relay.js';
import type { Reporter } from './reporter.js';
import { createReporter } from './reporter.js';

/** An origin is probed for this long after its last relay stopped. */
const RECENT_ORIGIN_MS = 10 * 60_000;
/** Shutdown waits this long for buffered reports before giving up on them. */
const SHUTDOWN_FLUSH_MS = 3_000;

export type Agent = {
  /** Base URL of the job API. */
  url: string;
  port: number;
  reporter: Reporter;
  /** Stops every relay, sends what it can within a few seconds, closes the API. */
  stop(): Promise<void>;
};

export async function startAgent(options: {
  config: AgentConfig;
  log: Logger;
  fetch?: typeof fetch;
  random?: () => number;
}): Promise<Agent> {
  const { config, log } = options;
  const startedAt = Date.now();
  const relays = new Map<string, Relay>();
  const recentOrigins = new Map<string, ProbeTarget & { lastUsedAt: number }>();
  const changed = new Set<string>();
  /** Relays refused at start (502): their one failure is still reported, though the job is gone. */
  const departed = new Map<string, Relay>();
  let probeResults: ProbeResult[] = [];
  // Since start, by status: the counters of GET /metrics.
  const probeCounts: Record<string, number> = {};
  const originChecks: Record<string, number> = {};
  const count = (counts: Record<string, number>, status: string) => {
    counts[status] = (counts[status] ?? 0) + 1;
  };
  let lastChangeReportAt = 0;
  const changeBudget = createChangeBudget({
    perHour: config.changeBudgetPerHour,
    burst: CHANGE_BURST,
    now: startedAt,
  });
  let changeTimer: NodeJS.Timeout | undefined;
  let ticking = false;
  let stopping = false;

  const reporter = createReporter({
    statusUrl: config.statusUrl,
    token: config.reporterToken,
    maxBufferedHeartbeats: config.bufferHeartbeats,
    requestTimeoutMs: config.reportTimeoutMs,
    retryMaxMs: config.reportRetryMaxMs,
    reportIntervalMs: config.intervalMs,
    ip: config.ip,
    log,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.random ? { random: options.random } : {}),
  });

  function relayHeartbeat(relay: Relay, ts: number): Heartbeat | undefined {
    const current = relay.current();
    if (current === undefined) return undefined;
    return {
      ip: config.ip,
      process: relay.job.id,
      status: current.status,
      kind: 'relay',
      origin: originOf(relay.job.source).slice(
        0,
        HEARTBEAT_LIMITS.maxOriginLength,
      ),
      ts,
      detail: current.detail,
    };
  }

  function probeHeartbeat(result: ProbeResult): Heartbeat {
    return {
      ip: config.ip,
      process: probeProcessName(result).slice(
        0,
        HEARTBEAT_LIMITS.maxProcessLength,
      ),
      status: result.status,
      kind: 'probe',
      origin: result.origin.slice(0, HEARTBEAT_LIMITS.maxOriginLength),
      ts: result.at,
      detail: result.detail,
    };
  }

  function rememberOrigin(job: RelayJob, at: number): void {
    const target = originTarget(job.source);
    if (target === undefined) return;
    recentOrigins.set(`${target.host} ${target.port}`, {
      ...target,
      lastUsedAt: at,
    });
  }

  function probeTargets(now: number): ProbeTarget[] {
    const targets = new Map<string, ProbeTarget>();
    for (const { host, port } of config.probes) {
      const bracketed = host.includes(':') ? `[${host}]` : host;
      targets.set(`${host} ${port}`, {
        host,
        port,
        origin: `tcp://${bracketed}:${port}`,
      });
    }
    if (config.probeOrigins) {
      for (const relay of relays.values()) rememberOrigin(relay.job, now);
      for (const [key, origin] of recentOrigins) {
        if (now - origin.lastUsedAt > RECENT_ORIGIN_MS)
          recentOrigins.delete(key);
        else if (!targets.has(key))
          targets.set(key, {
            host: origin.host,
            port: origin.port,
            origin: origin.origin,
          });
      }
    }
    return [...targets.values()];
  }

  /** The periodic report: every relay's current status and a fresh probe of every target. */
  async function tick(): Promise<void> {
    if (ticking || stopping) return;
    ticking = true;
    try {
      const targets = probeTargets(Date.now());
      probeResults = await Promise.all(
        targets.map((target) =>
          probeTcp(target, { timeoutMs: config.probeTimeoutMs }),
        ),
      );
      for (const result of probeResults) count(probeCounts, result.status);
      if (stopping) return;
      const ts = Date.now();
      const heartbeats = [...relays.values(), ...departed.values()]
        .map((relay) => relayHeartbeat(relay, ts))
        .filter((heartbeat): heartbeat is Heartbeat => heartbeat !== undefined);
      heartbeats.push(...probeResults.map(probeHeartbeat));
      // This report carries every change made so far.
      changed.clear();
      departed.clear();
      if (heartbeats.length > 0) reporter.enqueue(heartbeats);
      else reporter.renew();
      log.debug('periodic report', { heartbeats: heartbeats.length });
    } finally {
      ticking = false;
    }
  }

  function sendChanges(): void {
    changeTimer = undefined;
    if (stopping || changed.size === 0) return;
    lastChangeReportAt = Date.now();
    changeBudget.spend(lastChangeReportAt);
    const heartbeats = [
      ...[...changed].map((id) => relays.get(id)),
      ...departed.values(),
    ]
      .map((relay) =>
        relay ? relayHeartbeat(relay, lastChangeReportAt) : undefined,
      )
      .filter((heartbeat): heartbeat is Heartbeat => heartbeat !== undefined);
    changed.clear();
    departed.clear();
    if (heartbeats.length > 0) reporter.enqueue(heartbeats);
  }

  function onStatusChange(relay: Relay): void {
    changed.add(relay.job.id);
    if (changeTimer !== undefined || stopping) return;
    const now = Date.now();
    // Changes within the gap wait and leave together in one request; with the
    // budget spent they wait for it, or ride on the next periodic report.
    const wait = Math.max(
      0,
      lastChangeReportAt + config.changeGapMs - now,
      changeBudget.waitMs(now),
    );
    if (wait === Number.POSITIVE_INFINITY) return;
    changeTimer = setTimeout(sendChanges, wait);
  }

  /**
   * The honest start: waits for the relay's first frame or first failure, up
   * to the confirm timeout. A relay that fails first is not kept.
   */
  async function confirm(relay: Relay): Promise<AddOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), config.confirmTimeoutMs);
    });
    const first =
      config.confirmTimeoutMs === 0
        ? undefined
        : await Promise.race([relay.firstOutcome, timedOut]);
    clearTimeout(timer);
    if (first === undefined)
      return { outcome: 'starting', relay: relay.view() };
    if (first.kind === 'flowing')
      return { outcome: 'flowing', relay: relay.view() };
    if (first.kind === 'stopped') return { outcome: 'stopped' };
    if (relays.get(relay.job.id) === relay) {
      relays.delete(relay.job.id);
      departed.set(relay.job.id, relay);
    }
    await relay.stop();
    log.warn('relay refused: failed before flowing', {
      relay: relay.job.id,
      status: first.status.status,
      cause: first.status.cause,
      detail: first.status.detail,
    });
    return {
      outcome: 'failed',
      status: first.status.status,
      cause: first.status.cause,
      detail: first.status.detail,
    };
  }

  const registry: RelayRegistry = {
    async add(job): Promise<AddOutcome> {
      const existing = relays.get(job.id);
      if (existing) {
        const same =
          existing.job.source === job.source &&
          existing.job.target === job.target;
        return same
          ? { outcome: 'exists', relay: existing.view() }
          : { outcome: 'conflict' };
      }
      if (relays.size >= config.maxRelays)
        return { outcome: 'limit', limit: config.maxRelays };
      const relay = startRelay({
        job,
        settings: config,
        log,
        onStatusChange,
        onOriginCheck: (status) => count(originChecks, status),
        ...(options.random ? { random: options.random } : {}),
      });
      relays.set(job.id, relay);
      rememberOrigin(job, Date.now());
      return confirm(relay);
    },
    get: (id) => relays.get(id)?.view(),
    list: () => [...relays.values()].map((relay) => relay.view()),
    async remove(id) {
      const relay = relays.get(id);
      if (relay === undefined) return false;
      relays.delete(id);
      changed.delete(id);
      rememberOrigin(relay.job, Date.now());
      await relay.stop();
      return true;
    },
    status() {
      const byStatus: Record<string, number> = {};
      for (const relay of relays.values()) {
        const status = relay.view().status;
        byStatus[status] = (byStatus[status] ?? 0) + 1;
      }
      return {
        ip: config.ip,
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        relays: { total: relays.size, byStatus },
        probes: probeResults.map((result) => ({
          process: probeProcessName(result),
          origin: result.origin,
          status: result.status,
          detail: result.detail,
          at: new Date(result.at).toISOString(),
        })),
        reports: reporter.stats(),
      };
    },
    metrics() {
      return prometheusText({
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        relays: [...relays.values()].map((relay) => relay.view()),
        probes: probeCounts,
        originChecks,
        reports: reporter.stats(),
      });
    },
  };

  const server = createServer(
    createJobApi({ token: config.agentToken, registry, log }),
  );
  // Bounds on slow or idle clients of the job API.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const bracketed = config.host.includes(':')
    ? `[${config.host}]`
    : config.host;
  const url = `http://${bracketed}:${port}`;

  const interval = setInterval(() => void tick(), config.intervalMs);
  // The first report goes out at once: a fresh machine has probes to tell.
  const firstTick = setTimeout(() => void tick(), 0);
  log.info('agent started', {
    url,
    ip: config.ip,
    statusUrl: config.statusUrl,
    intervalMs: config.intervalMs,
    probes: config.probes.length,
  });

  return {
    url,
    port,
    reporter,
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(interval);
      clearTimeout(firstTick);
      if (changeTimer) clearTimeout(changeTimer);
      await Promise.all([...relays.values()].map((relay) => relay.stop()));
      relays.clear();
      await reporter.flush(SHUTDOWN_FLUSH_MS);
      reporter.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      log.info('agent stopped', { reports: reporter.stats() });
    },
  };
}

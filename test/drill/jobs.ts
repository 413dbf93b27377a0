/**
 * The drill's dispatcher: a steady stream of short relay jobs sent to the
 * agents through the dispatcher client library (blocklist-filtered), and the
 * blocklist poller that times bans.
 */
import type { BlocklistClient } from '../../clients/dispatcher/index.js';
import { dispatch } from '../../clients/dispatcher/index.js';
import type { TestSink } from '../../clients/test-stream/media.js';
import type { BanSighting, JobRecord } from './figures.js';

export type DrillAgent = { url: string; ip: string };
export type DispatchOutcome = Pick<
  JobRecord,
  'landedOn' | 'state' | 'attempts'
>;

const CHECK_TIMEOUT_MS = 5_000;

/**
 * The one dispatch step: where a job lands and what every asked agent answered.
 * It is the dispatcher library's dispatch(): the agents in the order given,
 * blocked ones left out (panic rule included), moving on to the next agent on
 * a refusal, a failed start, a timeout or an unreachable agent.
 */
export async function dispatchJob(options: {
  job: { id: string; source: string; target: string };
  agents: readonly DrillAgent[];
  blocklist: BlocklistClient;
  agentToken: string;
}): Promise<DispatchOutcome> {
  const result = await dispatch(options.job, options.agents, {
    token: options.agentToken,
    blocklist: options.blocklist,
  });
  return {
    landedOn: result.landed ? result.agent.ip : undefined,
    state: result.state ?? undefined,
    attempts: result.attempts.map((attempt) => ({
      ip: attempt.agent.ip,
      outcome: attempt.outcome,
      ...(attempt.httpStatus === null ? {} : { status: attempt.httpStatus }),
      ...(attempt.status === null ? {} : { relayStatus: attempt.status }),
    })),
  };
}

/** Agents in the order of job n's turn: n mod N first, then the rest in rotation. */
export function rotation<T>(agents: readonly T[], n: number): T[] {
  const start = n % agents.length;
  return [...agents.slice(start), ...agents.slice(0, start)];
}

export type JobStream = {
  jobs: JobRecord[];
  /** Stops sending; resolves once every job sent has ended (checked and stopped). */
  stop(): Promise<void>;
};

/**
 * Sends job n every `everyMs` to rotation(agents, n); each started job runs
 * for `jobMs`, then the sink's bytes and the agent's relay status are recorded
 * and the relay is stopped (DELETE).
 */
export function startJobStream(options: {
  agents: readonly DrillAgent[];
  blocklist: BlocklistClient;
  agentToken: string;
  sink: TestSink;
  source: string;
  idPrefix: string;
  everyMs: number;
  jobMs: number;
}): JobStream {
  const jobs: JobRecord[] = [];
  const ending: Promise<void>[] = [];
  const agentOf = new Map(options.agents.map((agent) => [agent.ip, agent]));
  const headers = { authorization: `Bearer ${options.agentToken}` };
  let n = 0;

  const end = async (record: JobRecord, path: string) => {
    await new Promise((resolve) => setTimeout(resolve, options.jobMs));
    record.sinkBytes = options.sink.bytesReceived(path);
    const agent = agentOf.get(record.landedOn as string) as DrillAgent;
    const url = `${agent.url}/relays/${encodeURIComponent(record.id)}`;
    try {
      const response = await fetch(url, {
        headers,
        signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
      });
      if (response.ok)
        record.finalStatus = (
          (await response.json()) as { status?: string }
        ).status;
      else await response.body?.cancel();
    } catch {
      record.finalStatus = 'unknown';
    }
    await fetch(url, {
      method: 'DELETE',
      headers,
      signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
    })
      .then((response) => response.body?.cancel())
      .catch(() => undefined);
  };

  const send = async () => {
    const index = n++;
    const agents = rotation(options.agents, index);
    const id = `${options.idPrefix}-${index}`;
    const path = `/out/${id}.flv`;
    const record: JobRecord = {
      id,
      sentAt: Date.now(),
      turn: (agents[0] as DrillAgent).ip,
      attempts: [],
    };
    jobs.push(record);
    const outcome = await dispatchJob({
      job: { id, source: options.source, target: options.sink.url(path) },
      agents,
      blocklist: options.blocklist,
      agentToken: options.agentToken,
    });
    record.answeredAt = Date.now();
    record.landedOn = outcome.landedOn;
    record.state = outcome.state;
    record.attempts = outcome.attempts;
    if (record.landedOn !== undefined) await end(record, path);
  };

  const timer = setInterval(
    () => ending.push(send().catch(() => undefined)),
    options.everyMs,
  );
  ending.push(send().catch(() => undefined));
  return {
    jobs,
    async stop() {
      clearInterval(timer);
      await Promise.all(ending);
    },
  };
}

export type BlocklistWatch = {
  sightings: BanSighting[];
  /** IPs listed at the last poll. */
  listed(): Set<string>;
  stop(): void;
};

/** Polls GET /v1/blocklist every `everyMs` and records when each IP appears and leaves. */
export function watchBlocklist(options: {
  url: string;
  readerToken: string;
  everyMs: number;
}): BlocklistWatch {
  const sightings: BanSighting[] = [];
  const open = new Map<string, BanSighting>();
  let stopped = false;
  let busy = false;
  const poll = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      const response = await fetch(`${options.url}/v1/blocklist`, {
        headers: { authorization: `Bearer ${options.readerToken}` },
        signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
      });
      if (!response.ok) {
        await response.body?.cancel();
        return;
      }
      const body = (await response.json()) as {
        entries: Array<{ ip: string; reason: string; until: string }>;
      };
      const at = Date.now();
      const now = new Set<string>();
      for (const entry of body.entries) {
        if (Date.parse(entry.until) <= at) continue;
        now.add(entry.ip);
        if (!open.has(entry.ip)) {
          const sighting: BanSighting = {
            ip: entry.ip,
            reason: entry.reason,
            firstSeen: at,
          };
          open.set(entry.ip, sighting);
          sightings.push(sighting);
        }
      }
      for (const [ip, sighting] of open) {
        if (now.has(ip)) continue;
        sighting.goneAt = at;
        open.delete(ip);
      }
    } catch {
      // the next poll tries again
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void poll(), options.everyMs);
  void poll();
  return {
    sightings,
    listed: () => new Set(open.keys()),
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

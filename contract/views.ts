/**
 * What the read routes answer for people to look at: GET /v1/fleet,
 * GET /v1/ips/{ip} and GET /v1/events, as the CLI and the dashboard show them.
 */
import type { BlocklistEntry } from './blocklist.js';

/** What the numbers were when a rule fired: kept with every event. */
export type IpEvidence = {
  ip: string;
  /** ok + connect_failed on origins not in outage: the samples that count. */
  samples: number;
  ok: number;
  connectFailed: number;
  failRatio: number;
  /** connect_failed on origins in outage: counted against no machine. */
  excusedFailures: number;
  /** connect_failed on origins no other IP reached in the window: nothing to cross-check, so not counted. */
  uncorroboratedFailures: number;
  /** connect_failed delivered more than the grace after it was observed (a backlog): counted against no machine. */
  lateFailures: number;
  originErrors: number;
  errors: number;
  origins: number;
};

export type Counts = {
  ok: number;
  connect_failed: number;
  origin_error: number;
  error: number;
};
/** A ban as GET /v1/blocklist and GET /v1/ips/{ip} give it (the wire contract), with the fields only the latter has. */
export type BanView = BlocklistEntry & { offense?: number; rule?: string };
export type FleetView = {
  generatedAt: string;
  aggregatedMinute: string | null;
  aggregationLagMinutes: number | null;
  dryRun: boolean;
  reporting: IpEvidence[];
  banned: BanView[];
  silent: { ip: string; lastSeen: string }[];
  originOutages: string[];
  fleetWideFailure: boolean;
  /** Absent from status centers older than the silence rule. */
  fleetSilence?: boolean;
  capInForce: boolean;
  capped: string[];
};
export type IpView = {
  ip: string;
  banned: boolean;
  ban: BanView | null;
  minutes: {
    minute: string;
    start: string;
    relay: Counts;
    probe: Counts;
    origins: number;
  }[];
};
export type AuditEvent = {
  type: string;
  at: string;
  ip?: string;
  origin?: string;
  minute?: string;
  enforced: boolean;
  rule?: string;
  evidence: Record<string, any>;
};

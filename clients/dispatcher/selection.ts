/**
 * Which candidates may get work: the healthy ones, unless too few are healthy,
 * in which case all of them (Envoy's healthy-panic rule). A detector that bans
 * most of the fleet is more likely broken than the fleet, and refusing all
 * work would turn its mistake into an outage.
 */
import type { BlocklistEntry } from '#contract/blocklist';

/** An IP string, or any object that names its machine's IP in `ip`. */
export type Candidate = string | { readonly ip: string };

export type BlockedCandidate<T> = { candidate: T; ban: BlocklistEntry };

export type Assessment<T> = {
  /** Candidates not on the blocklist, in input order. */
  healthy: T[];
  /** Candidates on the blocklist, with the ban that blocks each. */
  blocked: BlockedCandidate<T>[];
  /** What may get work: `healthy`, or every candidate when `panic`. */
  usable: T[];
  /** True when healthy / all < minHealthyShare, so blocked candidates are used too. */
  panic: boolean;
};

export function ipOfCandidate(candidate: Candidate): string {
  const ip = typeof candidate === 'string' ? candidate : candidate?.ip;
  if (typeof ip !== 'string') {
    throw new TypeError(
      'a candidate must be an IP string or an object with a string `ip` field',
    );
  }
  return ip;
}

export type AssessOptions<T> = {
  candidates: readonly T[];
  /** The ban in force on an IP, if any. */
  banOf: (ip: string) => BlocklistEntry | undefined;
  /** 0 turns panic off: then an all-blocked pool leaves nothing usable. */
  minHealthyShare: number;
};

export function assessCandidates<T extends Candidate>(
  options: AssessOptions<T>,
): Assessment<T> {
  const healthy: T[] = [];
  const blocked: BlockedCandidate<T>[] = [];
  for (const candidate of options.candidates) {
    const ban = options.banOf(ipOfCandidate(candidate));
    if (ban === undefined) healthy.push(candidate);
    else blocked.push({ candidate, ban });
  }
  const total = options.candidates.length;
  // A ratio, not healthy < share × total: 0.7 × 10 is 7.000000000000001 in floating point.
  const panic =
    blocked.length > 0 && healthy.length / total < options.minHealthyShare;
  return {
    healthy,
    blocked,
    usable: panic ? [...options.candidates] : healthy,
    panic,
  };
}

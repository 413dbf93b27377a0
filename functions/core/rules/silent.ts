import { silentAfterMs } from '../leases.js';
import { banVerdict, cappedVerdict, capRoom } from './cap.js';
import type { Rule, SilenceEvidence, Verdict } from './evidence.js';
import { emptyEvidence, isAllowlisted } from './evidence.js';

const NAME = 'silent';

type Silent = {
  ip: string;
  seenAt: number;
  interval: number;
  silentForMs: number;
  limitMs: number;
};

/**
 * Silence as evidence. An agent that declares its report interval holds a
 * lease; an IP whose lease is broken (nothing for silentLeases intervals plus
 * the grace) while it was relaying or probing is banned, under the safety cap.
 * When at least fleetSilenceShare of the recently reporting leased IPs missed
 * a report at once, the observer or the network is the likelier fault (as
 * Kubernetes freezes evictions when a whole zone stops reporting): nobody is
 * banned for silence, fleet_silence is recorded, and when it ends every lease
 * gets a fresh grace. "Recently" is within one interval past the ban limit: an
 * IP silent for longer was judged already, or is gone.
 */
export const silentRule: Rule = {
  name: NAME,
  metrics: ['SilentBans', 'FleetSilence'],
  decide(evidence, knobs, earlier) {
    const { input, now, bansInForce } = evidence;
    if (!input.leases || input.closing) return [];
    const bannedNow = new Set(
      earlier.flatMap(({ decision }) =>
        decision.type === 'ban' || decision.type === 'escalation'
          ? [decision.ip]
          : [],
      ),
    );
    const recent: string[] = [];
    const quiet: string[] = [];
    const silent: Silent[] = [];
    for (const [ip, [seenAt, interval, active]] of Object.entries(
      input.leases,
    )) {
      const silentForMs = now - seenAt;
      const limitMs = silentAfterMs(interval, knobs);
      if (silentForMs > limitMs + interval * 1000) continue;
      recent.push(ip);
      if (silentForMs > (interval + knobs.graceSeconds) * 1000) quiet.push(ip);
      if (
        silentForMs > limitMs &&
        active &&
        !bansInForce.has(ip) &&
        !bannedNow.has(ip)
      ) {
        silent.push({ ip, seenAt, interval, silentForMs, limitMs });
      }
    }
    const share = recent.length ? quiet.length / recent.length : 0;
    const wasSilent = input.previous.fleetSilent ?? false;
    // Nobody recent: the whole fleet has been silent for long; the condition stands as it was.
    const fleetSilent =
      recent.length === 0
        ? wasSilent
        : quiet.length > 0 && share >= knobs.fleetSilenceShare - 1e-9;
    const silence: SilenceEvidence = {
      recentIps: recent.length,
      quietIps: quiet.length,
      share: Math.round(share * 1e4) / 1e4,
    };
    const spared = silent.map((s) => s.ip).sort();

    if (fleetSilent || wasSilent) {
      if (fleetSilent === wasSilent) return [];
      const type = fleetSilent ? 'fleet_silence' : 'fleet_silence_recovered';
      // On recovery the aggregator gives every lease a fresh grace, so nobody is judged in this decision.
      return [
        {
          decision: { type, evidence: silence, spared },
          by: NAME,
          event: { type, rule: NAME, evidence: { ...silence, spared } },
          ...(fleetSilent ? { metric: 'FleetSilence' } : {}),
        },
      ];
    }

    // Capped and allowlisted IPs are recorded once per silence: when it began after the previous live decision.
    const began = (s: Silent) =>
      input.previous.at === undefined ||
      s.seenAt + s.limitMs > input.previous.at;
    const verdicts: Verdict[] = [];
    const candidates: Silent[] = [];
    for (const s of silent) {
      if (!isAllowlisted(s.ip, knobs.allowlist)) candidates.push(s);
      else if (began(s)) {
        const ipEvidence = emptyEvidence(s.ip);
        verdicts.push({
          decision: { type: 'allowlisted', ip: s.ip, evidence: ipEvidence },
          by: NAME,
          event: {
            type: 'allowlisted',
            ip: s.ip,
            rule: 'allowlist',
            evidence: { ...ipEvidence, silence: silenceOf(s) },
          },
        });
      }
    }
    candidates.sort(
      (a, b) => b.silentForMs - a.silentForMs || (a.ip < b.ip ? -1 : 1),
    );
    const { room, capEvidence } = capRoom(evidence, knobs, earlier, recent);
    candidates.forEach((s, index) => {
      if (index >= room) {
        if (began(s))
          verdicts.push(
            cappedVerdict(NAME, emptyEvidence(s.ip), capEvidence, false),
          );
        return;
      }
      verdicts.push(
        banVerdict({
          by: NAME,
          rule: NAME,
          evidence: emptyEvidence(s.ip),
          reason: `silent for ${Math.round(s.silentForMs / 1000)} s (report interval ${s.interval} s; limit ${knobs.silentLeases} x ${s.interval} s + ${knobs.graceSeconds} s grace)`,
          now,
          offense: evidence.recentOffenses(s.ip).length + 1,
          knobs,
          metric: 'SilentBans',
          extra: { silence: silenceOf(s) },
        }),
      );
    });
    return verdicts;
  },
};

function silenceOf(s: Silent) {
  return {
    lastSeen: new Date(s.seenAt).toISOString(),
    intervalSeconds: s.interval,
    silentSeconds: Math.round(s.silentForMs / 1000),
    limitSeconds: s.limitMs / 1000,
  };
}

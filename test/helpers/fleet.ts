import type { Heartbeat } from '../../functions/core/heartbeat.js';
import { minuteStart } from '../../functions/core/minutes.js';

/**
 * A realistic fleet for the fleet bench and the scale test: each machine runs
 * 10–100 relays over origins drawn from a pool of 200 hosts, probes each of
 * its origins and 3 canaries; 3 % of the machines cannot reach their origins
 * (80 % of their relays and all their probes fail). Deterministic per machine and
 * minute: a machine runs one relay more every other minute.
 */
const ORIGIN_POOL = 200;
export const FAILING_SHARE = 0.03;
const CANARIES = [
  'tcp://canary-a.example.org:443',
  'tcp://canary-b.example.org:443',
  'tcp://canary-c.example.org:443',
];

/** A small deterministic PRNG (mulberry32), so every run writes the same fleet. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const originHost = (i: number) =>
  `rtmp://live-${i}.customer-${(i * 37) % 101}.example.com:1935`;

/** Machine n's IP: 10.a.b.c for the first 16 M. */
export const fleetIp = (n: number) =>
  `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

/**
 * One machine's periodic report in `minute`, as its agent sends it.
 * `healthy`: a minute before the failures begin, in which no machine fails.
 */
export function machineReport(
  n: number,
  minute: number,
  options: { healthy?: boolean } = {},
): Heartbeat[] {
  const next = random(n * 7919 + 17);
  const ip = fleetIp(n);
  const failing = next() < FAILING_SHARE && !options.healthy;
  // Every other minute a machine runs one relay more: a fleet's counts move
  // from minute to minute (its fleet view is never the same twice), while
  // which machines fail does not.
  const relays = 10 + Math.floor(next() * 90) + ((n + minute) % 2);
  // Observed a few seconds before the writers deliver it (55 s into the minute): on time, not a backlog.
  const ts = minuteStart(minute) + 50_000 + Math.floor(next() * 4_000);
  const heartbeats: Heartbeat[] = [];
  const origins = new Set<number>();
  for (let j = 0; j < relays; j++) {
    const origin = Math.floor(next() * ORIGIN_POOL);
    origins.add(origin);
    const status = failing && next() < 0.8 ? 'connect_failed' : 'ok';
    heartbeats.push({
      ip,
      process: `ffmpeg-${j}`,
      status,
      origin: `${originHost(origin)}/live/s${n}-${j}`,
      ts,
    });
  }
  for (const origin of origins) {
    heartbeats.push({
      ip,
      process: `probe:${origin}`,
      kind: 'probe',
      status: failing ? 'connect_failed' : 'ok',
      origin: originHost(origin),
      ts,
    });
  }
  for (const canary of CANARIES) {
    heartbeats.push({
      ip,
      process: `probe:${canary}`,
      kind: 'probe',
      status: failing ? 'connect_failed' : 'ok',
      origin: canary,
      ts,
    });
  }
  return heartbeats;
}

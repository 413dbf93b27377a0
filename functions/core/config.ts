import * as z from 'zod/mini';
import type { Cidr } from '#contract/ip';
import { parseCidr } from '#contract/ip';
import { ConfigError, parseWith } from '#contract/validation';

/**
 * Every knob of the status center: its environment variable, default, and why.
 * parseConfig reads them once per process (cold start) and fails fast naming
 * the variable; the README's knob table is written from this list
 * (npm run docs:knobs).
 */
type Knob<T> = {
  env: string;
  fallback: string | undefined;
  doc: string;
  schema: z.ZodMiniType<T>;
};

const number = (options: { min: number; max: number; int?: boolean }) =>
  z.pipe(
    z.string().check(z.regex(/^-?\d+(\.\d+)?$/, 'must be a number')),
    z.pipe(
      z.transform((text: string) => Number(text)),
      z
        .number()
        .check(
          ...(options.int ? [z.int()] : []),
          z.gte(
            options.min,
            `must be a${options.int ? 'n integer' : ' number'} from ${options.min} to ${options.max}`,
          ),
          z.lte(
            options.max,
            `must be a${options.int ? 'n integer' : ' number'} from ${options.min} to ${options.max}`,
          ),
        ),
    ),
  );
const ratio = () =>
  z.pipe(
    z.string().check(z.regex(/^\d+(\.\d+)?$/, 'must be a number in (0, 1]')),
    z.pipe(
      z.transform((text: string) => Number(text)),
      z
        .number()
        .check(
          z.gt(0, 'must be a number in (0, 1]'),
          z.lte(1, 'must be a number in (0, 1]'),
        ),
    ),
  );
const flag = () =>
  z.pipe(
    z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off']),
    z.transform((text): boolean => ['true', '1', 'yes', 'on'].includes(text)),
  );
const optionalText = () => z.optional(z.string());
const signingKeys = () =>
  z.optional(
    z.string().check(
      z.refine(
        (value) =>
          value
            .split(',')
            .map((k) => k.trim())
            .filter(Boolean)
            .every((k) => k.length >= 32),
        {
          message:
            'must be comma-separated keys of at least 32 characters each',
        },
      ),
    ),
  );
const cidrList = () =>
  z.pipe(
    z.string(),
    z.pipe(
      z.transform((value: string, ctx) => {
        const cidrs: Cidr[] = [];
        for (const item of value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)) {
          const cidr = parseCidr(item);
          if (cidr) cidrs.push(cidr);
          else
            ctx.issues.push({
              code: 'custom',
              input: item,
              message: `"${item}" is not an IP or CIDR`,
            });
        }
        return cidrs;
      }),
      z.array(z.custom<Cidr>()),
    ),
  );

/** The most write shards a minute may have (RELAYWATCH_SHARDS); readers trust no shard-count marker above it. */
export const MAX_SHARDS = 64;

export const KNOBS = {
  tableName: {
    env: 'TABLE_NAME',
    fallback: 'relaywatch',
    doc: 'DynamoDB table name (set by the CDK stack in AWS).',
    schema: z
      .string()
      .check(
        z.regex(
          /^[A-Za-z0-9_.-]{3,255}$/,
          'must be a DynamoDB table name: 3-255 of A-Z a-z 0-9 _ . -',
        ),
      ),
  },
  dynamodbEndpoint: {
    env: 'DYNAMODB_ENDPOINT',
    fallback: undefined,
    doc: 'DynamoDB endpoint override, e.g. DynamoDB Local (http://127.0.0.1:8000). Unset in AWS.',
    schema: optionalText(),
  },
  region: {
    env: 'AWS_REGION',
    fallback: 'us-east-1',
    doc: 'AWS region (Lambda sets it; locally any value).',
    schema: z
      .string()
      .check(
        z.regex(
          /^[a-z]{2}(-[a-z]+)+-\d+$/,
          'must be an AWS region like us-east-1',
        ),
      ),
  },
  shards: {
    env: 'RELAYWATCH_SHARDS',
    fallback: '4',
    doc: 'Write shards per minute bucket (HB#<minute>#<shard>): one per 30,000 machines reporting once a minute (each shard takes ~1,000 writes/s; half of that is headroom). Any change is safe while minutes are open: writers mark each minute with their count, and readers also read the shards of every count marked.',
    schema: number({ min: 1, max: MAX_SHARDS, int: true }),
  },
  graceSeconds: {
    env: 'RELAYWATCH_GRACE_SECONDS',
    fallback: '10',
    doc: 'How long after a minute ends its heartbeats still count; the aggregator waits this out before reading the minute.',
    schema: number({ min: 0, max: 50, int: true }),
  },
  maxCatchUpMinutes: {
    env: 'RELAYWATCH_MAX_CATCHUP_MINUTES',
    fallback: '10',
    doc: 'How many missed minutes one aggregation run catches up on at most; older missed minutes are left undecided, with an aggregation_failed event and the AggregationFailures metric.',
    schema: number({ min: 1, max: 120, int: true }),
  },
  windowMinutes: {
    env: 'RELAYWATCH_WINDOW_MINUTES',
    fallback: '1',
    doc: "Complete minutes the failure ratio is computed over (ending with the minute being aggregated). A closing decision holds this many minutes of the fleet's rows: at 100,000 machines each is ~350 MB, so above 1 raise the aggregate function's memory (README, Longer windows, late runs).",
    schema: number({ min: 1, max: 15, int: true }),
  },
  failRatio: {
    env: 'RELAYWATCH_FAIL_RATIO',
    fallback: '0.5',
    doc: 'Ban when connect_failed / (ok + connect_failed) reaches this.',
    schema: ratio(),
  },
  minSamples: {
    env: 'RELAYWATCH_MIN_SAMPLES',
    fallback: '10',
    doc: 'No automatic ban on fewer counted samples (ok + connect_failed) in the window.',
    schema: number({ min: 1, max: 1_000_000, int: true }),
  },
  banSeconds: {
    env: 'RELAYWATCH_BAN_SECONDS',
    fallback: '3600',
    doc: 'Length of a first automatic ban; the n-th within 24 h lasts n times this.',
    schema: number({ min: 1, max: 7 * 86_400, int: true }),
  },
  maxBanSeconds: {
    env: 'RELAYWATCH_MAX_BAN_SECONDS',
    fallback: '14400',
    doc: 'Cap on an escalated automatic ban.',
    schema: number({ min: 1, max: 30 * 86_400, int: true }),
  },
  maxBanFraction: {
    env: 'RELAYWATCH_MAX_BAN_FRACTION',
    fallback: '0.5',
    doc: 'Automatic bans never cover more than floor(reporting IPs x this) IPs (at least 1).',
    schema: ratio(),
  },
  originOutageMinIps: {
    env: 'RELAYWATCH_ORIGIN_OUTAGE_MIN_IPS',
    fallback: '3',
    doc: 'An origin is in outage only when it fails from at least this many IPs in the window.',
    schema: number({ min: 2, max: 10_000, int: true }),
  },
  originOutageRatio: {
    env: 'RELAYWATCH_ORIGIN_OUTAGE_RATIO',
    fallback: '0.5',
    doc: 'An origin failing (connect_failed or origin_error) from at least this share of the IPs relaying it is in outage: its failures count against no machine.',
    schema: ratio(),
  },
  fleetFailureShare: {
    env: 'RELAYWATCH_FLEET_FAILURE_SHARE',
    fallback: '0.8',
    doc: 'When at least this share of reporting IPs fail, the fault is fleet-wide (the observer or the uplink): nobody is banned and the event is recorded.',
    schema: ratio(),
  },
  fleetMinIps: {
    env: 'RELAYWATCH_FLEET_MIN_IPS',
    fallback: '3',
    doc: 'Fewer reporting IPs than this are too few to call a failure fleet-wide.',
    schema: number({ min: 2, max: 10_000, int: true }),
  },
  releaseMinutes: {
    env: 'RELAYWATCH_RELEASE_MINUTES',
    fallback: '1',
    doc: 'A banned IP whose probes were all healthy over the last this many minutes (a trailing window of time that begins after the ban) is released early.',
    schema: number({ min: 1, max: 60, int: true }),
  },
  probeOkRatio: {
    env: 'RELAYWATCH_PROBE_OK_RATIO',
    fallback: '0.95',
    doc: 'A minute of probes is healthy when ok / (ok + connect_failed) reaches this.',
    schema: ratio(),
  },
  probeMinSamples: {
    env: 'RELAYWATCH_PROBE_MIN_SAMPLES',
    fallback: '3',
    doc: 'Probe samples a minute needs to count as healthy.',
    schema: number({ min: 1, max: 100_000, int: true }),
  },
  allowlist: {
    env: 'RELAYWATCH_ALLOWLIST',
    fallback: '',
    doc: 'Comma-separated IPs and CIDRs (v4 and v6) that are never banned automatically.',
    schema: cidrList(),
  },
  dryRun: {
    env: 'RELAYWATCH_DRY_RUN',
    fallback: 'false',
    doc: 'Compute and record every decision as an event, but change no ban.',
    schema: flag(),
  },
  silentLeases: {
    env: 'RELAYWATCH_SILENT_LEASES',
    fallback: '2',
    doc: 'An IP whose agent declared a report interval (reportIntervalSeconds) and that was relaying or probing is banned as silent once it has sent nothing for this many intervals plus the grace.',
    schema: number({ min: 1, max: 10, int: true }),
  },
  fleetSilenceShare: {
    env: 'RELAYWATCH_FLEET_SILENCE_SHARE',
    fallback: '0.55',
    doc: "When at least this share of the recently reporting leased IPs missed a report at once, the silence is the status center's or the network's fault: nobody is banned for silence and fleet_silence is recorded.",
    schema: ratio(),
  },
  passSeconds: {
    env: 'RELAYWATCH_PASS_SECONDS',
    fallback: '10',
    doc: 'How often one scheduled aggregation run decides over the trailing window (the open minute too) while it lasts its minute; 60 decides once per run.',
    schema: number({ min: 5, max: 60, int: true }),
  },
  silentMinutes: {
    env: 'RELAYWATCH_SILENT_MINUTES',
    fallback: '5',
    doc: 'An IP that reported before and has sent nothing for this many minutes is "silent" in the fleet view.',
    schema: number({ min: 1, max: 1440, int: true }),
  },
  bucketTtlHours: {
    env: 'RELAYWATCH_BUCKET_TTL_HOURS',
    fallback: '48',
    doc: 'How long raw per-minute heartbeat data is kept (DynamoDB TTL).',
    schema: number({ min: 1, max: 24 * 90, int: true }),
  },
  eventTtlDays: {
    env: 'RELAYWATCH_EVENT_TTL_DAYS',
    fallback: '30',
    doc: 'How long audit events are kept (DynamoDB TTL).',
    schema: number({ min: 1, max: 3650, int: true }),
  },
  waitForGrace: {
    env: 'RELAYWATCH_AGGREGATE_WAITS',
    fallback: 'true',
    doc: 'Let an aggregation run sleep between its passes (every RELAYWATCH_PASS_SECONDS until its minute ends); false makes one pass per run.',
    schema: flag(),
  },
  logLevel: {
    env: 'LOG_LEVEL',
    fallback: 'info',
    doc: 'One of debug, info, warn, error.',
    schema: z.enum(['debug', 'info', 'warn', 'error']),
  },
  reporterToken: {
    env: 'RELAYWATCH_REPORTER_TOKEN',
    fallback: undefined,
    doc: 'Fleet-wide reporter token(s), comma-separated for rotation: UNBOUND, they may report for any IP (local trials and migration; prefer per-machine tokens from POST /v1/reporter-tokens).',
    schema: optionalText(),
  },
  reporterKeys: {
    env: 'RELAYWATCH_REPORTER_KEYS',
    fallback: undefined,
    doc: 'Signing key(s) of per-machine reporter tokens, comma-separated, at least 32 characters each; the first signs new tokens, all verify (local runtime: generated when unset; in AWS a secret).',
    schema: signingKeys(),
  },
  credentialCacheSeconds: {
    env: 'RELAYWATCH_CREDENTIAL_CACHE_SECONDS',
    fallback: '300',
    doc: 'Longest a function keeps tokens, signing keys and the reporter revocation list before reading them again: a rotation or revocation takes effect within this.',
    schema: number({ min: 0, max: 3600, int: true }),
  },
  readerToken: {
    env: 'RELAYWATCH_READER_TOKEN',
    fallback: undefined,
    doc: 'Token(s) of the reader role (local runtime).',
    schema: optionalText(),
  },
  adminToken: {
    env: 'RELAYWATCH_ADMIN_TOKEN',
    fallback: undefined,
    doc: 'Token(s) of the admin role (local runtime).',
    schema: optionalText(),
  },
  tokenSecrets: {
    env: 'RELAYWATCH_TOKEN_SECRETS',
    fallback: undefined,
    doc: 'AWS: JSON {"reader": ARN, "admin": ARN, "reporterKeys": ARN, "reporter"?: ARN} of the Secrets Manager secrets this function may read: only those of the roles its route admits (set by the CDK stack).',
    schema: optionalText(),
  },
} satisfies Record<string, Knob<unknown>>;

type Knobs = typeof KNOBS;
export type Config = Readonly<{
  [K in keyof Knobs]: z.infer<Knobs[K]['schema']>;
}>;

export { ConfigError } from '#contract/validation';

/**
 * Reads every knob from `env` (process.env), applying defaults.
 * @example parseConfig({ RELAYWATCH_FAIL_RATIO: '0.6' }).failRatio // 0.6
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, knob] of Object.entries(KNOBS) as [
    string,
    Knob<unknown>,
  ][]) {
    const raw =
      env[knob.env] === undefined || env[knob.env] === ''
        ? knob.fallback
        : env[knob.env];
    const result = parseWith(knob.schema, raw);
    if (result.ok) values[key] = result.value;
    else
      problems.push(
        `${knob.env}=${JSON.stringify(raw)} ${result.issues.map((i) => i.message).join('; ')}`,
      );
  }
  const config = values as Config;
  if (!problems.length && config.maxBanSeconds < config.banSeconds) {
    problems.push(
      'RELAYWATCH_MAX_BAN_SECONDS must be at least RELAYWATCH_BAN_SECONDS',
    );
  }
  if (problems.length)
    throw new ConfigError(`invalid configuration: ${problems.join(', ')}`);
  return Object.freeze(config);
}

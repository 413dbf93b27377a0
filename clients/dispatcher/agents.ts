/**
 * Relay agents as the reference dispatcher knows them: where to POST a job,
 * and the machine IP the agent reports heartbeats as (what the blocklist bans).
 */
import { canonicalIp } from '#contract/ip';

export type Agent = { url: string; ip: string };

export type ParsedAgents =
  | { ok: true; agents: Agent[] }
  | { ok: false; message: string };

function agentOf(
  url: unknown,
  ip: unknown,
  where: string,
): { ok: true; agent: Agent } | { ok: false; message: string } {
  const parsed = typeof url === 'string' ? URL.parse(url) : null;
  if (
    parsed === null ||
    (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
  ) {
    return {
      ok: false,
      message: `${where}: the agent URL must be http(s) (got ${JSON.stringify(url)})`,
    };
  }
  if (
    parsed.username !== '' ||
    parsed.password !== '' ||
    parsed.search !== '' ||
    parsed.hash !== ''
  ) {
    return {
      ok: false,
      message: `${where}: the agent URL must have no user, password, query or fragment`,
    };
  }
  const canonical = typeof ip === 'string' ? canonicalIp(ip.trim()) : undefined;
  if (canonical === undefined) {
    return {
      ok: false,
      message: `${where}: ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`,
    };
  }
  return {
    ok: true,
    agent: {
      url: `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`,
      ip: canonical,
    },
  };
}

/**
 * Parses `--agent <url>=<ip>`. The split is at the last "=", since an IP
 * never contains one.
 * @example parseAgentSpec('http://127.0.0.1:7001=203.0.113.7')
 */
export function parseAgentSpec(
  spec: string,
): { ok: true; agent: Agent } | { ok: false; message: string } {
  const at = spec.lastIndexOf('=');
  if (at <= 0)
    return {
      ok: false,
      message: `--agent ${JSON.stringify(spec)}: expected <agent URL>=<machine IP>`,
    };
  return agentOf(
    spec.slice(0, at),
    spec.slice(at + 1),
    `--agent ${JSON.stringify(spec)}`,
  );
}

/** Parses an agents file: a JSON array of {"url": "...", "ip": "..."}. */
export function parseAgentsFile(text: string, name: string): ParsedAgents {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: `${name}: not valid JSON` };
  }
  if (!Array.isArray(json))
    return {
      ok: false,
      message: `${name}: expected a JSON array of {"url", "ip"} objects`,
    };
  const agents: Agent[] = [];
  for (const [index, item] of json.entries()) {
    const record =
      typeof item === 'object' && item !== null
        ? (item as Record<string, unknown>)
        : {};
    const parsed = agentOf(record.url, record.ip, `${name}[${index}]`);
    if (!parsed.ok) return parsed;
    agents.push(parsed.agent);
  }
  return { ok: true, agents };
}

/** Where the agent takes jobs. */
export function relaysUrlOf(agent: Agent): string {
  return `${agent.url}/relays`;
}

import { describe, expect, it } from 'vitest';
import { parseWith } from '#contract/validation';
import {
  JOB_LIMITS,
  originOf,
  redactUrl,
  relayJobSchema,
} from '../../../../clients/agent/job.js';

const JOB = {
  id: 'cust-42.main',
  source: 'rtmp://origin.example/live/cam1',
  target: 'rtmp://ingest.example/live/key',
};
const check = (body: unknown) => parseWith(relayJobSchema, body);
const pathsOf = (body: unknown) => {
  const parsed = check(body);
  return parsed.ok ? [] : parsed.issues.map((issue) => issue.path);
};

describe('relay job schema', () => {
  it('accepts a job with an id, a network source and a network target', () => {
    expect(check(JOB)).toEqual({ ok: true, value: JOB });
  });

  it('refuses local-file and pipe URLs, naming the field', () => {
    expect(pathsOf({ ...JOB, source: 'file:///etc/passwd' })).toEqual([
      'source',
    ]);
    expect(pathsOf({ ...JOB, target: 'pipe:1' })).toEqual(['target']);
    expect(pathsOf({ ...JOB, source: 'concat:http://a|http://b' })).toEqual([
      'source',
    ]);
  });

  it('refuses an id over the limit or with characters outside the allowed set', () => {
    expect(
      pathsOf({ ...JOB, id: 'x'.repeat(JOB_LIMITS.maxIdLength + 1) }),
    ).toEqual(['id']);
    expect(pathsOf({ ...JOB, id: 'a/b' })).toEqual(['id']);
    expect(pathsOf({ ...JOB, id: '' })).toEqual(['id']);
  });

  it('reserves the probe: prefix for the agent', () => {
    expect(pathsOf({ ...JOB, id: 'probe:1.2.3.4:80' })).toEqual(['id']);
  });

  it('refuses a URL over the length limit', () => {
    const long = `http://origin.example/${'a'.repeat(JOB_LIMITS.maxUrlLength)}`;

    expect(pathsOf({ ...JOB, source: long })).toEqual(['source']);
  });

  it('refuses URLs with spaces, no host, or the wrong type', () => {
    expect(pathsOf({ ...JOB, source: 'http://origin.example/a b' })).toEqual([
      'source',
    ]);
    expect(pathsOf({ ...JOB, target: 'rtmp:///live/key' })).toEqual(['target']);
    expect(pathsOf({ ...JOB, source: 42 })).toEqual(['source']);
  });

  it('names an unknown field instead of ignoring it', () => {
    const parsed = check({ ...JOB, sorce: 'x' });

    expect(parsed.ok).toBe(false);
    expect(JSON.stringify(parsed)).toContain('sorce');
  });

  it('names every missing field', () => {
    expect(pathsOf({}).sort()).toEqual(['id', 'source', 'target']);
  });
});

describe('what leaves the machine about a URL', () => {
  it('names the origin by scheme, host and port only', () => {
    expect(
      originOf('rtmp://user:pw@Origin.example:1935/live/key?token=t'),
    ).toBe('rtmp://origin.example:1935');
    expect(originOf('http://origin.example/live.flv')).toBe(
      'http://origin.example',
    );
  });

  it('redacts userinfo, query and every path segment after the first', () => {
    expect(redactUrl('rtmp://user:pw@ingest.example/live/secret?x=1')).toBe(
      'rtmp://ingest.example/live/…',
    );
    expect(redactUrl('http://origin.example:8080/live.flv?token=t')).toBe(
      'http://origin.example:8080/live.flv',
    );
  });
});

describe('URL hardening', () => {
  it('refuses upper-case schemes, which URL would accept and ffmpeg would not', () => {
    expect(
      pathsOf({ ...JOB, source: 'HTTP://origin.example/live.flv' }),
    ).toEqual(['source']);
    expect(
      pathsOf({ ...JOB, target: 'RTMP://ingest.example/live/key' }),
    ).toEqual(['target']);
    expect(pathsOf({ ...JOB, source: 'Srt://origin.example:9000' })).toEqual([
      'source',
    ]);
  });

  it('allows only caller-mode SRT with a fixed set of options', () => {
    expect(
      check({
        ...JOB,
        source: 'srt://origin.example:9000?streamid=cam1&latency=200',
      }).ok,
    ).toBe(true);
    expect(
      check({
        ...JOB,
        target: 'srt://ingest.example:9000?mode=caller&passphrase=0123456789ab',
      }).ok,
    ).toBe(true);
    expect(
      pathsOf({ ...JOB, source: 'srt://origin.example:9000?mode=listener' }),
    ).toEqual(['source']);
    expect(
      pathsOf({ ...JOB, target: 'srt://0.0.0.0:9000?mode=rendezvous' }),
    ).toEqual(['target']);
    expect(
      pathsOf({ ...JOB, source: 'srt://origin.example:9000?localport=4000' }),
    ).toEqual(['source']);
    expect(
      pathsOf({
        ...JOB,
        source: 'srt://origin.example:9000?mode=caller&mode=listener',
      }),
    ).toEqual(['source']);
  });

  it('names the refused SRT option', () => {
    const parsed = check({
      ...JOB,
      source: 'srt://origin.example:9000?mode=listener',
    });
    expect(JSON.stringify(parsed)).toContain('caller');
  });
});

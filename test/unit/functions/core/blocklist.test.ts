import { describe, expect, it } from 'vitest';
import { parseWith } from '#contract/validation';
import type { Ban } from '../../../../functions/core/blocklist.js';
import {
  blocklistAt,
  blocklistEtag,
  blocklistResponseSchema,
  isBanActive,
  manualBanSchema,
  toBlocklistEntry,
} from '../../../../functions/core/blocklist.js';

const NOW = Date.parse('2026-11-24T14:03:20Z');

function ban(ip: string, fields: Partial<Ban> = {}): Ban {
  return {
    ip,
    reason: 'connect failures 8/10',
    since: NOW - 60_000,
    until: NOW + 3_600_000,
    manual: false,
    failRatio: 0.8,
    samples: 10,
    offense: 1,
    rule: 'fail-ratio',
    ...fields,
  };
}

describe('isBanActive', () => {
  it('holds a ban in force until its last millisecond and not at its end', () => {
    expect(isBanActive({ until: NOW + 1 }, NOW)).toBe(true);
    expect(isBanActive({ until: NOW }, NOW)).toBe(false);
    expect(isBanActive({ until: NOW - 1 }, NOW)).toBe(false);
  });
});

describe('blocklistAt', () => {
  it('never lists an expired ban, even when the store still returns it', () => {
    const list = blocklistAt(
      [
        ban('192.0.2.1'),
        ban('192.0.2.2', { until: NOW }),
        ban('192.0.2.3', { until: NOW - 1 }),
      ],
      NOW,
    );
    expect(list.entries.map((e) => e.ip)).toEqual(['192.0.2.1']);
  });

  it('lists nothing when every ban has expired', () => {
    expect(
      blocklistAt([ban('192.0.2.1', { until: NOW - 5 })], NOW).entries,
    ).toEqual([]);
  });

  it('lists entries in the same order whatever order the bans come in', () => {
    const bans = [
      ban('198.51.100.7'),
      ban('192.0.2.10'),
      ban('2001:db8::1'),
      ban('192.0.2.9'),
    ];
    const forward = blocklistAt(bans, NOW);
    const backward = blocklistAt([...bans].reverse(), NOW);
    expect(backward.entries).toEqual(forward.entries);
    expect(forward.entries.map((e) => e.ip)).toEqual([
      '192.0.2.10',
      '192.0.2.9',
      '198.51.100.7',
      '2001:db8::1',
    ]);
  });

  it('stamps the list with the time it was made', () => {
    expect(blocklistAt([], NOW).generatedAt).toBe('2026-11-24T14:03:20.000Z');
  });

  it('produces a body that the dispatcher schema accepts', () => {
    const list = blocklistAt(
      [
        ban('192.0.2.1'),
        ban('192.0.2.2', { manual: true, failRatio: null, samples: null }),
      ],
      NOW,
    );
    expect(parseWith(blocklistResponseSchema, list).ok).toBe(true);
  });
});

describe('toBlocklistEntry', () => {
  it('shows times as ISO strings and leaves out internal fields', () => {
    expect(toBlocklistEntry(ban('192.0.2.1'))).toEqual({
      ip: '192.0.2.1',
      reason: 'connect failures 8/10',
      since: '2026-11-24T14:02:20.000Z',
      until: '2026-11-24T15:03:20.000Z',
      failRatio: 0.8,
      samples: 10,
      manual: false,
    });
  });
});

describe('blocklistEtag', () => {
  const bans = [ban('192.0.2.1'), ban('192.0.2.2')];

  it('stays the same when only generatedAt changes', () => {
    const earlier = blocklistAt(bans, NOW);
    const later = blocklistAt(bans, NOW + 30_000);
    expect(later.generatedAt).not.toBe(earlier.generatedAt);
    expect(blocklistEtag(later.entries)).toBe(blocklistEtag(earlier.entries));
  });

  it('stays the same when the bans come in another order', () => {
    expect(blocklistEtag(blocklistAt([...bans].reverse(), NOW).entries)).toBe(
      blocklistEtag(blocklistAt(bans, NOW).entries),
    );
  });

  it('changes when a ban is added', () => {
    const before = blocklistEtag(blocklistAt(bans, NOW).entries);
    const after = blocklistEtag(
      blocklistAt([...bans, ban('192.0.2.3')], NOW).entries,
    );
    expect(after).not.toBe(before);
  });

  it('changes when a ban expires', () => {
    const withTwo = blocklistAt(
      [ban('192.0.2.1'), ban('192.0.2.2', { until: NOW + 10_000 })],
      NOW,
    );
    const withOne = blocklistAt(
      [ban('192.0.2.1'), ban('192.0.2.2', { until: NOW + 10_000 })],
      NOW + 10_000,
    );
    expect(withOne.entries).toHaveLength(1);
    expect(blocklistEtag(withOne.entries)).not.toBe(
      blocklistEtag(withTwo.entries),
    );
  });

  it.each<[string, Partial<Ban>]>([
    ['its end is extended', { until: NOW + 7_200_000 }],
    ['its reason changes', { reason: 'manual ban' }],
    ['it becomes manual', { manual: true }],
    ['its ratio changes', { failRatio: 0.9 }],
  ])('changes when an entry changes because %s', (_why, change) => {
    const before = blocklistEtag(blocklistAt(bans, NOW).entries);
    const after = blocklistEtag(
      blocklistAt([ban('192.0.2.1', change), ban('192.0.2.2')], NOW).entries,
    );
    expect(after).not.toBe(before);
  });

  it('is a quoted strong ETag', () => {
    expect(blocklistEtag([])).toMatch(/^"[0-9a-f]{16}"$/);
  });

  it('tells apart many distinct single-entry lists', () => {
    const etags = new Set(
      Array.from({ length: 1000 }, (_, i) =>
        blocklistEtag(
          blocklistAt([ban(`10.0.${i >> 8}.${i & 255}`)], NOW).entries,
        ),
      ),
    );
    expect(etags.size).toBe(1000);
  });
});

describe('manualBanSchema', () => {
  it.each<[unknown, string[]]>([
    [{ durationSeconds: 60 }, []],
    [{ durationSeconds: 30 * 86_400, reason: 'abuse report #42' }, []],
    [{}, ['durationSeconds']],
    [{ durationSeconds: 0 }, ['durationSeconds']],
    [{ durationSeconds: 1.5 }, ['durationSeconds']],
    [{ durationSeconds: '60' }, ['durationSeconds']],
    [{ durationSeconds: 30 * 86_400 + 1 }, ['durationSeconds']],
    [{ durationSeconds: 60, reason: '' }, ['reason']],
    [{ durationSeconds: 60, reason: 'r'.repeat(257) }, ['reason']],
  ])('%j: issues on %j', (body, paths) => {
    const parsed = parseWith(manualBanSchema, body);
    expect(parsed.ok ? [] : parsed.issues.map((i) => i.path)).toEqual(paths);
  });
});

import { describe, expect, it } from 'vitest';
import {
  activeBanOf,
  buildCachedList,
  ipKey,
} from '../../../../clients/dispatcher/cached-list.js';
import { assessCandidates } from '../../../../clients/dispatcher/selection.js';
import { ban, blocklistBody, T0 } from '../../../helpers/dispatcher-fakes.js';

describe('assessCandidates', () => {
  const banned = new Set(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  const banOf = (ip: string) =>
    banned.has(ip) ? ban(ip, { until: T0 + 1 }) : undefined;

  it.each<[number, number, boolean]>([
    // [candidates (first `banned.size` of them blocked when present), share, panic]
    [10, 0.7, false],
    [10, 0.71, true],
    [6, 0.5, false],
    [5, 0.5, true],
    [4, 0.5, true],
    [3, 0.5, true],
    [3, 0, false],
  ])(
    'with %i candidates of which 3 are blocked and a share of %f, panic is %s',
    (count, share, panic) => {
      const candidates = Array.from(
        { length: count },
        (_, i) => `10.0.0.${i + 1}`,
      );

      const assessment = assessCandidates({
        candidates,
        banOf,
        minHealthyShare: share,
      });

      expect(assessment.panic).toBe(panic);
      expect(assessment.usable).toEqual(
        panic ? candidates : candidates.slice(3),
      );
      expect(assessment.blocked.map(({ candidate }) => candidate)).toEqual(
        candidates.slice(0, 3),
      );
    },
  );

  it('never panics when nothing is blocked, even with a share of 1', () => {
    expect(
      assessCandidates({ candidates: ['10.0.0.9'], banOf, minHealthyShare: 1 })
        .panic,
    ).toBe(false);
  });
});

describe('the cached list', () => {
  it('keys entries by canonical IP so any spelling of the address finds its ban', () => {
    const built = buildCachedList(
      blocklistBody([ban('2001:DB8:0:0::1', { until: T0 + 1_000 })]),
    );

    expect(built.ok && activeBanOf(built.list, '2001:db8::1', T0)?.ip).toBe(
      '2001:DB8:0:0::1',
    );
    expect(ipKey(' 192.0.2.1 ')).toBe('192.0.2.1');
  });

  it('keeps the longer ban when one address is listed twice', () => {
    const built = buildCachedList(
      blocklistBody([
        ban('192.0.2.1', { until: T0 + 5_000 }),
        ban('::ffff:192.0.2.1', { until: T0 + 1_000 }),
      ]),
    );

    expect(
      built.ok && activeBanOf(built.list, '192.0.2.1', T0 + 2_000),
    ).toBeTruthy();
  });

  it('treats a ban as over at its until instant', () => {
    const built = buildCachedList(
      blocklistBody([ban('192.0.2.1', { until: T0 })]),
    );

    expect(
      built.ok && activeBanOf(built.list, '192.0.2.1', T0 - 1),
    ).toBeTruthy();
    expect(
      built.ok && activeBanOf(built.list, '192.0.2.1', T0),
    ).toBeUndefined();
  });

  it('rejects a whole response whose entry has an unreadable until, naming the entry', () => {
    const built = buildCachedList(
      blocklistBody([
        ban('192.0.2.1', { until: T0 }),
        { ...ban('192.0.2.2', { until: T0 }), until: 'soon' },
      ]),
    );

    expect(built).toEqual({
      ok: false,
      message: 'entries.1.until is not a date',
    });
  });
});

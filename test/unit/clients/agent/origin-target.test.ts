import { describe, expect, it } from 'vitest';
import {
  originTarget,
  viaHttpProxy,
} from '../../../../clients/agent/probes.js';

describe('the endpoint an origin check connects to', () => {
  it.each([
    [
      'rtmp://user:secret@Origin.example/live/key',
      { host: 'origin.example', port: 1935, origin: 'rtmp://origin.example' },
    ],
    [
      'http://198.18.4.1:8080/live.flv?token=x',
      { host: '198.18.4.1', port: 8080, origin: 'http://198.18.4.1:8080' },
    ],
    [
      'https://[2001:db8::1]/live.m3u8',
      { host: '2001:db8::1', port: 443, origin: 'https://[2001:db8::1]' },
    ],
    [
      'rtsp://camera.example/stream',
      { host: 'camera.example', port: 554, origin: 'rtsp://camera.example' },
    ],
  ])(
    'takes the host and the (default) port of %s, and names only scheme://host:port',
    (source, expected) => {
      expect(originTarget(source, {})).toEqual(expected);
    },
  );

  it('checks nothing for an SRT source: it runs over UDP, where a TCP connect proves nothing', () => {
    expect(
      originTarget('srt://origin.example:9000?streamid=key'),
    ).toBeUndefined();
  });

  describe('when ffmpeg goes through an HTTP proxy (its http_proxy)', () => {
    const proxy = { http_proxy: 'http://proxy.internal:3128' };

    it('checks nothing for http and https sources: a direct connect says nothing of the proxied path', () => {
      expect(
        originTarget('http://origin.example/live.flv', proxy),
      ).toBeUndefined();
      expect(
        originTarget('https://origin.example/live.m3u8', proxy),
      ).toBeUndefined();
    });

    it('still checks RTMP and RTSP sources, which ffmpeg opens directly', () => {
      expect(originTarget('rtmp://origin.example/live/key', proxy)).toEqual({
        host: 'origin.example',
        port: 1935,
        origin: 'rtmp://origin.example',
      });
      expect(originTarget('rtsp://camera.example/stream', proxy)?.port).toBe(
        554,
      );
    });

    it('checks hosts that no_proxy exempts (a name, a domain and its subdomains, or *)', () => {
      const env = { ...proxy, no_proxy: 'localhost, .corp.example,10.0.0.5' };
      expect(viaHttpProxy('http:', 'origin.corp.example', env)).toBe(false);
      expect(viaHttpProxy('http:', 'corp.example', env)).toBe(false);
      expect(viaHttpProxy('https:', '10.0.0.5', env)).toBe(false);
      expect(viaHttpProxy('http:', 'notcorp.example', env)).toBe(true);
      expect(
        viaHttpProxy('http:', 'x.example', { ...proxy, no_proxy: '*' }),
      ).toBe(false);
      expect(
        originTarget('http://origin.corp.example/live.flv', env)?.host,
      ).toBe('origin.corp.example');
    });

    it('ignores what ffmpeg ignores: an upper-case HTTP_PROXY, or a proxy that is not http://', () => {
      expect(
        viaHttpProxy('http:', 'origin.example', {
          HTTP_PROXY: 'http://p:3128',
        }),
      ).toBe(false);
      expect(
        viaHttpProxy('http:', 'origin.example', {
          http_proxy: 'socks5://p:1080',
        }),
      ).toBe(false);
    });
  });
});

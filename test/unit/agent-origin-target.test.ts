import { describe, expect, it } from 'vitest';
import { originTarget } from '../../clients/agent/probes.js';

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
      expect(originTarget(source)).toEqual(expected);
    },
  );

  it('checks nothing for an SRT source: it runs over UDP, where a TCP connect proves nothing', () => {
    expect(
      originTarget('srt://origin.example:9000?streamid=key'),
    ).toBeUndefined();
  });
});

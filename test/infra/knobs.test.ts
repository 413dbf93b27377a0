import { App, Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { KNOBS } from '../../functions/core/config.js';
import { knobContextKey } from '../../infra/cloud/relaywatch-stack.js';
import { nagFindings, resourcesOf, synthesize } from './synth.js';

/** Template-only synths: bundling is skipped, so each takes well under a second. */
function synthTemplate(options: Parameters<typeof synthesize>[0]): Template {
  const synth = synthesize({ ...options, bundle: false });
  synth.cleanUp();
  return synth.template;
}

const functionsOf = (template: Template) =>
  Object.values(resourcesOf(template, 'AWS::Lambda::Function')).map(
    (fn) =>
      fn.Properties as {
        Environment: { Variables: Record<string, unknown> };
        LoggingConfig: Record<string, unknown>;
      },
  );

describe('knobs of a deployment', () => {
  it('names a knob in CDK context by its variable without the RELAYWATCH_ prefix', () => {
    expect(knobContextKey('failRatio')).toBe('relaywatch:FAIL_RATIO');
    expect(knobContextKey('logLevel')).toBe('relaywatch:LOG_LEVEL');
  });

  it('passes a knob set in CDK context to every function as its variable', () => {
    const template = synthTemplate({
      context: { 'relaywatch:FAIL_RATIO': '0.6', 'relaywatch:SHARDS': 8 },
    });
    const functions = functionsOf(template);
    expect(functions.length).toBeGreaterThan(1);
    for (const fn of functions) {
      expect(fn.Environment.Variables).toMatchObject({
        [KNOBS.failRatio.env]: '0.6',
        [KNOBS.shards.env]: '8',
      });
    }
  });

  it('lets stack props win over CDK context for the same knob', () => {
    const template = synthTemplate({
      context: { 'relaywatch:FAIL_RATIO': '0.6' },
      props: { knobs: { failRatio: 0.7 } },
    });
    for (const fn of functionsOf(template))
      expect(fn.Environment.Variables[KNOBS.failRatio.env]).toBe('0.7');
  });

  it('lets Lambda pass debug lines when LOG_LEVEL is debug', () => {
    const template = synthTemplate({ props: { knobs: { logLevel: 'debug' } } });
    for (const fn of functionsOf(template)) {
      expect(fn.Environment.Variables[KNOBS.logLevel.env]).toBe('debug');
      expect(fn.LoggingConfig.ApplicationLogLevel).toBe('DEBUG');
    }
  });

  it('keeps the Lambda filter at INFO when LOG_LEVEL is warn, so metric lines (which carry no level) survive', () => {
    const template = synthTemplate({ props: { knobs: { logLevel: 'warn' } } });
    for (const fn of functionsOf(template)) {
      expect(fn.Environment.Variables[KNOBS.logLevel.env]).toBe('warn');
      expect(fn.LoggingConfig.ApplicationLogLevel).toBe('INFO');
    }
  });

  it('fails synth naming the variable when a knob value is invalid', () => {
    expect(() =>
      synthTemplate({ context: { 'relaywatch:FAIL_RATIO': '1.5' } }),
    ).toThrow(/RELAYWATCH_FAIL_RATIO/);
  });

  it('fails synth on a relaywatch: context key that names no knob', () => {
    expect(() =>
      synthTemplate({ context: { 'relaywatch:FAIL_RATI0': '0.6' } }),
    ).toThrow(/relaywatch:FAIL_RATI0/);
  });
});

describe('API access logs', () => {
  it('are written to a log group with retention only when asked for, and still satisfy cdk-nag', () => {
    const synth = synthesize({ bundle: false, props: { apiAccessLogs: true } });
    synth.cleanUp();
    const stage = Object.values(
      resourcesOf(synth.template, 'AWS::ApiGatewayV2::Stage'),
    )[0];
    const settings = stage?.Properties.AccessLogSettings as {
      DestinationArn: unknown;
      Format: string;
    };
    expect(settings.DestinationArn).toBeDefined();
    expect(Object.keys(JSON.parse(settings.Format))).toEqual(
      expect.arrayContaining(['ip', 'route', 'status']),
    );
    expect(nagFindings(synth.app)).toEqual([]);
  });
});

describe('the cdk-nag check itself', () => {
  it('reports a finding nobody acknowledged', () => {
    const stack = new Stack(new App(), 'Bare');
    new CfnFunction(stack, 'Fn', {
      code: { zipFile: 'x' },
      role: 'arn:aws:iam::123456789012:role/x',
      runtime: 'nodejs22.x',
      handler: 'index.handler',
    });
    expect(nagFindings(stack).map((finding) => finding.rule)).toContain(
      'AwsSolutions-L1',
    );
  });
});

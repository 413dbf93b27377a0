import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import cdkNag from 'cdk-nag';
import type { IConstruct } from 'constructs';
import type { RelaywatchStackProps } from '../../infra/cloud/relaywatch-stack.js';
import { RelaywatchStack } from '../../infra/cloud/relaywatch-stack.js';

// CommonJS without statically listed exports: see infra/cloud/app.ts.
const { AwsSolutionsChecks } = cdkNag;

const cdkJson = JSON.parse(
  readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'),
) as {
  context?: Record<string, unknown>;
};

export type Synthesized = {
  app: App;
  stack: RelaywatchStack;
  template: Template;
  /** The cloud assembly directory: bundled function assets live here. */
  outdir: string;
  /** Removes the cloud assembly. */
  cleanUp: () => void;
};

/**
 * Synthesizes the stack as app.ts does (cdk.json context, cdk-nag as a
 * validation plugin, so an unacknowledged finding fails the synth). Bundling
 * runs esbuild per function and is the slow part; `bundle: false` skips it for
 * tests that look at the template only.
 */
export function synthesize(
  options: {
    props?: RelaywatchStackProps;
    context?: Record<string, unknown>;
    bundle?: boolean;
  } = {},
): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'relaywatch-cdk-'));
  const app = new App({
    outdir,
    context: {
      ...cdkJson.context,
      ...(options.bundle === false ? { 'aws:cdk:bundling-stacks': [] } : {}),
      ...options.context,
    },
  });
  const stack = new RelaywatchStack(app, 'Relaywatch', options.props);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  return {
    app,
    stack,
    template: Template.fromStack(stack),
    outdir,
    cleanUp: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

/** cdk-nag AwsSolutions findings in `scope` that nobody acknowledged. */
export function nagFindings(
  scope: IConstruct,
): { rule: string; severity: string; paths: string[] }[] {
  return new AwsSolutionsChecks()
    .validateScope(scope)
    .violations.map((violation) => ({
      rule: violation.ruleName,
      severity: violation.severity ?? 'error',
      paths: violation.violatingResources.map(
        (resource) => resource.constructPath ?? '?',
      ),
    }));
}

type CfnResource = {
  Type: string;
  Properties: Record<string, unknown>;
  DeletionPolicy?: string;
};

/** Resources of one type, by logical id. */
export function resourcesOf(
  template: Template,
  type: string,
): Record<string, CfnResource> {
  return template.findResources(type) as Record<string, CfnResource>;
}

/** Every action the function's role may take, from all policies attached to it. */
export function actionsOf(
  template: Template,
  functionLogicalId: string,
): { action: string; resources: unknown[]; condition?: Record<string, any> }[] {
  const fn = template.toJSON().Resources[functionLogicalId] as CfnResource;
  const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })[
    'Fn::GetAtt'
  ][0];
  const grants: {
    action: string;
    resources: unknown[];
    condition?: Record<string, any>;
  }[] = [];
  for (const policy of Object.values(
    resourcesOf(template, 'AWS::IAM::Policy'),
  )) {
    const roles = policy.Properties.Roles as { Ref: string }[];
    if (!roles.some((role) => role.Ref === roleId)) continue;
    const statements = (
      policy.Properties.PolicyDocument as {
        Statement: Record<string, unknown>[];
      }
    ).Statement;
    for (const statement of statements) {
      if (statement.Effect !== 'Allow') continue;
      const actions = [statement.Action].flat() as string[];
      const resources = [statement.Resource].flat();
      const condition = statement.Condition as Record<string, any> | undefined;
      for (const action of actions)
        grants.push({ action, resources, ...(condition ? { condition } : {}) });
    }
  }
  return grants;
}

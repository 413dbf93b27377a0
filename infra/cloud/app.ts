import { App, Validations } from 'aws-cdk-lib';
import cdkNag from 'cdk-nag';
import { RelaywatchStack } from './relaywatch-stack.js';

// cdk-nag is CommonJS whose exports Node's ESM loader cannot list, so no named import.
const { AwsSolutionsChecks } = cdkNag;

// Environment-agnostic: synth needs no account lookups and works offline.
const app = new App();
new RelaywatchStack(app, 'Relaywatch', {
  description:
    'relaywatch: failure-detection status center for live-video relay fleets',
});
// Synth stops on any finding that is not acknowledged with a reason next to its resource.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));

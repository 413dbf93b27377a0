/**
 * The README's knob tables, generated from each program's one table of
 * settings: the status center's KNOBS, npm start's START_SETTINGS, the agent's
 * SETTINGS, the dispatcher's FLAGS and the operator CLI's options. `npm run docs:knobs` writes them into
 * README.md between their markers; a unit test fails when the README differs.
 */

import { SETTINGS } from '../clients/agent/config.js';
import { OPTIONS } from '../clients/cli/cli.js';
import { FLAGS } from '../clients/dispatcher/flags.js';
import { settingsMarkdown } from '../clients/settings.js';
import { KNOBS } from '../functions/core/config.js';
import { START_SETTINGS } from './local/start-settings.js';

/** The status center's knobs: variable, default, meaning. */
function statusCenterMarkdown(): string {
  const rows = Object.values(KNOBS).map((knob) => {
    const fallback =
      knob.fallback === undefined
        ? '(unset)'
        : knob.fallback === ''
          ? '(empty)'
          : `\`${knob.fallback}\``;
    return `| \`${knob.env}\` | ${fallback} | ${knob.doc.replaceAll('|', '\\|')} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows]
    .join('\n')
    .concat('\n');
}

/** Each table by the name its README markers carry. */
function knobTables(): Record<string, string> {
  return {
    'status-center': statusCenterMarkdown(),
    start: settingsMarkdown(Object.values(START_SETTINGS)),
    agent: settingsMarkdown(Object.values(SETTINGS)),
    dispatcher: settingsMarkdown(Object.values(FLAGS)),
    cli: settingsMarkdown(Object.values(OPTIONS)),
  };
}

/**
 * The README with every table between `<!-- knobs:NAME:start -->` and
 * `<!-- knobs:NAME:end -->` replaced by the generated one. Throws when a
 * table's markers are missing, so a table cannot silently stop being written.
 */
export function withKnobTables(readme: string): string {
  let text = readme;
  for (const [name, table] of Object.entries(knobTables())) {
    const start = `<!-- knobs:${name}:start -->\n`;
    const end = `<!-- knobs:${name}:end -->`;
    const from = text.indexOf(start);
    const to = text.indexOf(end, from);
    if (from === -1 || to === -1)
      throw new Error(`README.md has no ${start.trim()} … ${end} markers`);
    text = `${text.slice(0, from + start.length)}${table}${text.slice(to)}`;
  }
  return text;
}

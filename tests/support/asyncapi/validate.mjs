// Parses one AsyncAPI document with the official parser (@asyncapi/parser) and prints its
// diagnostics as one JSON array: [{"severity": "error", "code": ..., "message": ..., "path": [...]}].
// Exit 0 when the parser ran (whatever it found), 2 when the file cannot be read.
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';

const SEVERITY = ['error', 'warning', 'info', 'hint']; // Spectral's DiagnosticSeverity order

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate.mjs <asyncapi.yaml|json>');
  process.exit(2);
}
let text;
try {
  text = await readFile(file, 'utf8');
} catch (err) {
  console.error(`cannot read ${file}: ${err.message}`);
  process.exit(2);
}
const { diagnostics } = await new Parser().parse(text, { source: file });
const out = diagnostics.map((d) => ({
  severity: SEVERITY[d.severity] ?? String(d.severity),
  code: String(d.code),
  message: d.message,
  path: d.path,
}));
console.log(JSON.stringify(out));

import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument } from 'yaml';

/** A YAML file that cannot be read or parsed; the message names the file (and line:column). */
export class YamlError extends Error {
  override name = 'YamlError';
}

/**
 * Reads a YAML file and returns its value plus `locate(path)`, the line of the node at a path (or of its
 * nearest ancestor), so validation errors can point at the line a person has to fix.
 */
export function readYamlFile(file: string): { raw: unknown; locate: (path: PropertyKey[]) => number | undefined } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new YamlError(`${file}: cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos?.[0];
    throw new YamlError(`${file}${line ? `:${line.line}:${line.col}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const raw = doc.toJS() ?? {};
  const locate = (path: PropertyKey[]): number | undefined => {
    for (let n = path.length; n > 0; n--) {
      const node = doc.getIn(path.slice(0, n) as (string | number)[], true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return { raw, locate };
}

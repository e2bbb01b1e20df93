// `walrelay schema -c FILE [--format json-schema|typescript] [TABLE…]`.
import type { Config } from '../../config/schema.js';
import { readPublishedShapes } from './published-shapes.js';
import { valueKindOf } from './value-kind.js';
import { eventJsonSchema } from './event-json-schema.js';
import { eventTypeScript } from './event-typescript.js';

export async function printEventSchema(config: Config, tables: readonly string[], format: 'json-schema' | 'typescript'): Promise<string> {
  const { shapes, catalog } = await readPublishedShapes(config, tables);
  const kinds = (shape: (typeof shapes)[number]) => shape.columns.map((column) => valueKindOf(column.typeOid, catalog));
  return format === 'typescript' ? eventTypeScript(shapes, kinds) : JSON.stringify(eventJsonSchema(shapes, kinds), null, 2) + '\n';
}

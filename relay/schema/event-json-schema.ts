// `walrelay schema --format json-schema`: one JSON Schema (draft 2020-12)
// document whose $defs hold the event of each published table (keyed
// "schema.table") and whose root accepts an event of any of them. It pins
// what README "The change event" promises: the fields per op, the columns of
// key, new and old with their value mapping, ids and LSNs by their form.
import type { PublishedShape } from './published-shapes.js';
import type { ValueKind } from './value-kind.js';

export type Kinds = (shape: PublishedShape) => ValueKind[];

const ID = '^[0-9A-F]{16}-([0-9]{10}|([0-9]{10})?\\.schema)$';
const LSN = '^[0-9A-F]{1,8}/[0-9A-F]{1,8}$';
const NULL = { type: 'null' };
const SCHEMA_COLUMN = {
  type: 'object',
  required: ['name', 'type', 'typeOid', 'typeMod', 'key'],
  properties: { name: { type: 'string' }, type: { type: 'string' }, typeOid: { type: 'integer' }, typeMod: { type: 'integer' }, key: { type: 'boolean' } },
  additionalProperties: false,
};

export function valueSchema(kind: ValueKind): Record<string, unknown> {
  switch (kind.kind) {
    case 'integer': return { type: 'integer' };
    case 'float': return { anyOf: [{ type: 'number' }, { enum: ['NaN', 'Infinity', '-Infinity'] }] };
    case 'decimal': return { type: 'string', pattern: '^(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|-?Infinity)$' };
    case 'boolean': return { type: 'boolean' };
    case 'json': return {};
    case 'base64': return { type: 'string', contentEncoding: 'base64' };
    case 'string': return { type: 'string' };
    case 'array': {
      // Any dimension: nested arrays of the element mapping, NULL elements as null.
      const element = valueSchema(kind.element);
      return { type: 'array', items: { anyOf: [element, NULL, { type: 'array' }] } };
    }
  }
}

function rowSchema(shape: PublishedShape, kinds: ValueKind[], required: 'all' | 'key' | 'none'): Record<string, unknown> {
  const columns = required === 'key' ? shape.columns.filter((column) => column.key) : shape.columns;
  const properties: Record<string, unknown> = {};
  columns.forEach((column) => {
    const value = valueSchema(kinds[shape.columns.indexOf(column)]);
    properties[column.name] = column.nullable ? { anyOf: [value, NULL] } : value;
  });
  return { type: 'object', properties, required: required === 'none' ? [] : columns.map((column) => column.name), additionalProperties: false };
}

export function tableEventSchema(shape: PublishedShape, kinds: ValueKind[]): Record<string, unknown> {
  const fullRow = rowSchema(shape, kinds, 'all');
  const partialRow = rowSchema(shape, kinds, 'none');
  const key = shape.columns.some((column) => column.key) ? rowSchema(shape, kinds, 'key') : NULL;
  const names = shape.columns.map((column) => column.name);
  // Every required field is also named under properties, so strict validators (ajv's strictRequired) accept the schema.
  const when = (ops: string[], required: string[], properties: Record<string, unknown> = {}) => ({
    if: { properties: { op: { enum: ops } } },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword, not a thenable
    then: { required, properties: { ...Object.fromEntries(required.map((field) => [field, true])), ...properties } },
  });
  return {
    title: `${shape.schema}.${shape.table} change event`,
    description: `columns: ${shape.columns.map((column) => `${column.name} ${column.sqlType}`).join(', ')}; schemaVersion ${shape.version}`,
    type: 'object',
    required: ['id', 'op', 'schema', 'table', 'lsn', 'commitLsn', 'xid', 'commitTime'],
    properties: {
      id: { type: 'string', pattern: ID },
      op: { enum: ['insert', 'update', 'delete', 'read', 'truncate', 'schema'] },
      schema: { const: shape.schema },
      table: { const: shape.table },
      schemaVersion: { type: 'string', pattern: '^[0-9a-f]{12}$' },
      key: { anyOf: [key, NULL] },
      new: { anyOf: [partialRow, NULL] },
      old: { anyOf: [partialRow, NULL] },
      unchanged: { type: 'array', items: { enum: names }, uniqueItems: true },
      cascade: { type: 'boolean' },
      restartIdentity: { type: 'boolean' },
      columns: { type: 'array', items: SCHEMA_COLUMN },
      lsn: { type: 'string', pattern: LSN },
      commitLsn: { type: 'string', pattern: LSN },
      xid: { type: 'integer', minimum: 0, maximum: 4294967295 },
      commitTime: { type: 'string', pattern: '^[-+0-9]+-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$' },
    },
    additionalProperties: false,
    allOf: [
      when(['insert', 'read'], ['schemaVersion', 'key', 'new', 'old'], { new: fullRow, old: NULL }),
      when(['update'], ['schemaVersion', 'key', 'new', 'old']),
      when(['delete'], ['schemaVersion', 'key', 'new', 'old'], { new: NULL }),
      when(['truncate'], ['cascade', 'restartIdentity'], { key: NULL, new: NULL, old: NULL }),
      when(['schema'], ['schemaVersion', 'columns']),
    ],
  };
}

export function eventJsonSchema(shapes: readonly PublishedShape[], kinds: Kinds): Record<string, unknown> {
  const defs: Record<string, unknown> = {};
  for (const shape of shapes) defs[`${shape.schema}.${shape.table}`] = tableEventSchema(shape, kinds(shape));
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'walrelay change events',
    description: 'Generated by walrelay schema from the live catalog. $defs holds one schema per published table.',
    $defs: defs,
    oneOf: Object.keys(defs).map((name) => ({ $ref: `#/$defs/${name.replaceAll('~', '~0').replaceAll('/', '~1')}` })),
  };
}

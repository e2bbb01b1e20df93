// The configuration file's JSON Schema, derived from the zod schema so that
// editors (yaml-language-server), `walrelay config-schema` and the generated
// reference (docs/configuration.md) can never disagree with what run accepts.
import { z } from 'zod';
import { configSchema, edgeConfigSchema } from './schema.js';
import { SECRET_KEYS, fileTwin } from './secrets.js';

export type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  additionalProperties?: boolean | JsonSchema;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  $schema?: string;
  title?: string;
  [key: string]: unknown;
};

/** The schema of what a user writes (input side: keys with defaults are optional). */
export function configJsonSchema(): JsonSchema {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  // source.url may come from DATABASE_URL or WALRELAY_SOURCE_URL instead of the file.
  const source = schema.properties?.source;
  if (source?.required) source.required = source.required.filter((key) => key !== 'url');
  addSecretFileTwins(schema);
  return { ...schema, title: 'walrelay configuration' };
}

/** The JSON Schema of `walrelay edge`'s file (docs/edges.md), with the same secret-file twins. */
export function edgeJsonSchema(): JsonSchema {
  const schema = z.toJSONSchema(edgeConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  addSecretFileTwins(schema);
  return { ...schema, title: 'walrelay edge configuration' };
}

/** config/secrets.ts reads `<key>File` before validation; the file's schema shows the twins (and the secret is no longer required). */
function addSecretFileTwins(schema: JsonSchema): void {
  if (schema.properties) {
    for (const key of SECRET_KEYS) {
      if (!(key in schema.properties)) continue;
      schema.properties[fileTwin(key)] = { type: 'string', description: `a file holding ${key} (a Kubernetes or Docker secret; a trailing newline is ignored); instead of ${key}` };
      if (schema.required) schema.required = schema.required.filter((name) => name !== key);
    }
    Object.values(schema.properties).forEach(addSecretFileTwins);
  }
  if (schema.items) addSecretFileTwins(schema.items);
  if (typeof schema.additionalProperties === 'object') addSecretFileTwins(schema.additionalProperties);
  (schema.oneOf ?? schema.anyOf ?? []).forEach(addSecretFileTwins);
}

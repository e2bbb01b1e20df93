// authorization: rls in the configuration: only with supabase: true and tokens,
// and `setup --print-sql` adds the role grants it needs.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../config/schema.js';
import { privilegeSql } from '../../relay/setup/print-sql.js';

const auth = { jwtSecret: 'a-secret-that-is-at-least-32-bytes-long!' };
const config = (sink: Record<string, unknown>) => ({ source: { url: 'postgres://walrelay@db/app' }, sinks: [{ type: 'websocket', port: 8080, auth, ...sink }] });

it('accepts authorization: rls on a Supabase sink, claims by default', () => {
  assert.equal(configSchema.parse(config({ supabase: true })).sinks[0]!.type === 'websocket' && (configSchema.parse(config({ supabase: true })).sinks[0] as any).authorization, 'claims');
  assert.equal((configSchema.parse(config({ supabase: true, authorization: 'rls' })).sinks[0] as any).authorization, 'rls');
});

it('refuses authorization: rls without supabase: true or without tokens', () => {
  assert.match(JSON.stringify(configSchema.safeParse(config({ authorization: 'rls' })).error?.issues), /set supabase: true/);
  assert.match(JSON.stringify(configSchema.safeParse(config({ supabase: true, authorization: 'rls', auth: 'none' })).error?.issues), /needs tokens/);
});

it('prints the role grants only when a sink uses authorization: rls', () => {
  assert.match(privilegeSql(configSchema.parse(config({ supabase: true, authorization: 'rls' }))), /GRANT anon, authenticated TO walrelay;/);
  assert.doesNotMatch(privilegeSql(configSchema.parse(config({ supabase: true }))), /GRANT anon/);
});

// Exactly-once delivery into Redis (`exactlyOnce: true`): each batch is one
// Lua script, which Redis runs atomically. The script compares every event id
// with the sink's checkpoint key (the last event id written), appends only the
// events after it, and moves the checkpoint, all in one step. So a batch
// re-sent after a crash, a retry whose first attempt did land, or the late
// write of a paused walrelay whose standby has taken over (a zombie) appends
// nothing twice: event ids sort in stream order (commit LSN, then position).
//
// Ids sort in that order as bytes, so the script compares bytes. Lua's `<`
// and `>` on strings use strcoll, and Redis sets LC_COLLATE from its
// environment: under en_US.UTF-8 punctuation is ignored at the first level,
// "<lsn>-0000000000" would sort below "<lsn>-.begin", and the rows of a
// transaction with begin or schema events would be skipped.
//
// One script call per batch on a single Redis: it touches the checkpoint key and every
// stream of the batch, which Redis Cluster refuses unless all share one hash
// slot; in Cluster mode each stream gets a checkpoint of its own, hash-tagged
// with the stream, and one script call per stream (cluster.ts, docs/redis-cluster.md).
import { encodeCommand } from './connection.js';

// ARGV: maxLen, then per entry: stream key index, event id, field count n,
// n field/value strings (the entry's fields, as the at-least-once XADD has them).
const SCRIPT = `
local byte = string.byte
-- a > b, comparing bytes (not the locale's collation); equal strings are not after each other.
local function after(a, b)
  if a == b then return false end
  local n = math.min(#a, #b)
  for k = 1, n do
    local x, y = byte(a, k), byte(b, k)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local last = redis.call('GET', KEYS[1])
local maxLen = ARGV[1]
local appended = 0
local newest = last
local i = 2
while i <= #ARGV do
  local id = ARGV[i + 1]
  local count = tonumber(ARGV[i + 2])
  if (not newest) or after(id, newest) then
    local command = { 'XADD', KEYS[tonumber(ARGV[i])] }
    if maxLen ~= '' then
      table.insert(command, 'MAXLEN')
      table.insert(command, '~')
      table.insert(command, maxLen)
    end
    table.insert(command, '*')
    for f = 1, count do table.insert(command, ARGV[i + 2 + f]) end
    redis.call(unpack(command))
    newest = id
    appended = appended + 1
  end
  i = i + 3 + count
end
-- Set even when unchanged: a batch that appends nothing still writes, so a WAIT / WAITAOF after it
-- (waitReplicas, waitAof) covers the earlier write of the same events on a connection since lost.
if newest then redis.call('SET', KEYS[1], newest) end
return appended
`;

export interface StreamEntry {
  stream: string;
  id: string;
  /** Field/value pairs of the stream entry, flattened: ['event', json] for a change event. */
  fields: readonly string[];
}

/** The EVAL command (RESP) that appends `entries` after the checkpoint in `checkpointKey`. */
export function exactlyOnceCommand(checkpointKey: string, entries: readonly StreamEntry[], maxLen: number | undefined): string {
  const { keys, args } = exactlyOnceArguments(checkpointKey, entries, maxLen);
  return encodeCommand(['EVAL', SCRIPT, String(keys.length), ...keys, ...args]);
}

/** The script and its KEYS/ARGV for a client library that sends commands itself (ioredis, in cluster and sentinel mode). */
export const EXACTLY_ONCE_SCRIPT = SCRIPT;

export function exactlyOnceArguments(checkpointKey: string, entries: readonly StreamEntry[], maxLen: number | undefined): { keys: string[]; args: string[] } {
  const keys = [checkpointKey];
  const keyIndex = new Map<string, number>();
  const args: string[] = [maxLen === undefined ? '' : String(maxLen)];
  for (const entry of entries) {
    let index = keyIndex.get(entry.stream);
    if (index === undefined) {
      keys.push(entry.stream);
      index = keys.length; // Lua's KEYS is 1-based
      keyIndex.set(entry.stream, index);
    }
    args.push(String(index), entry.id, String(entry.fields.length), ...entry.fields);
  }
  return { keys, args };
}

// Exactly-once delivery into Redis (`exactlyOnce: true`): each batch is one
// Lua script, which Redis runs atomically. The script compares every event id
// with the sink's checkpoint key (the last event id written), appends only the
// events after it, and moves the checkpoint, all in one step. So a batch
// re-sent after a crash, a retry whose first attempt did land, or the late
// write of a paused walrelay whose standby has taken over (a zombie) appends
// nothing twice: event ids sort in stream order (commit LSN, then position).
//
// Redis Cluster: a script may only touch keys of one hash slot, so every
// stream of the sink and the checkpoint key must share one (hash tags).
import { encodeCommand } from './redis-connection.js';

const SCRIPT = `
local last = redis.call('GET', KEYS[1])
local maxLen = ARGV[1]
local appended = 0
local newest = last
for i = 2, #ARGV, 3 do
  local id = ARGV[i + 1]
  if (not newest) or id > newest then
    if maxLen == '' then
      redis.call('XADD', KEYS[tonumber(ARGV[i])], '*', 'event', ARGV[i + 2])
    else
      redis.call('XADD', KEYS[tonumber(ARGV[i])], 'MAXLEN', '~', maxLen, '*', 'event', ARGV[i + 2])
    end
    newest = id
    appended = appended + 1
  end
end
if newest and newest ~= last then redis.call('SET', KEYS[1], newest) end
return appended
`;

export interface StreamEntry {
  stream: string;
  id: string;
  json: string;
}

/** The EVAL command (RESP) that appends `entries` after the checkpoint in `checkpointKey`. */
export function exactlyOnceCommand(checkpointKey: string, entries: readonly StreamEntry[], maxLen: number | undefined): string {
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
    args.push(String(index), entry.id, entry.json);
  }
  return encodeCommand(['EVAL', SCRIPT, String(keys.length), ...keys, ...args]);
}

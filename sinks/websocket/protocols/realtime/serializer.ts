// Phoenix channel frames, in both of realtime-js's
// serializers: vsn 1.0.0 sends objects {join_ref, ref, topic, event, payload},
// vsn 2.0.0 sends arrays [join_ref, ref, topic, event, payload]. Outgoing
// frames are built as text around payload JSON that is already serialised,
// so a change is serialised once however many channels receive it.

export type Vsn = '1.0.0' | '2.0.0';

export function isVsn(value: string): value is Vsn {
  return value === '1.0.0' || value === '2.0.0';
}

export interface PhoenixMessage {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
}

export class ProtocolError extends Error {}

export function decode(vsn: Vsn, text: string): PhoenixMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ProtocolError('malformed JSON');
  }
  let fields: unknown[];
  if (vsn === '2.0.0') {
    if (!Array.isArray(raw) || raw.length !== 5) throw new ProtocolError('a vsn 2.0.0 frame is [join_ref, ref, topic, event, payload]');
    fields = raw;
  } else {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ProtocolError('a vsn 1.0.0 frame is {join_ref, ref, topic, event, payload}');
    const object = raw as Record<string, unknown>;
    fields = [object.join_ref, object.ref, object.topic, object.event, object.payload];
  }
  const [joinRef, ref, topic, event, payload] = fields;
  if (typeof topic !== 'string' || typeof event !== 'string') throw new ProtocolError('a frame needs a string topic and event');
  return {
    joinRef: refOf(joinRef),
    ref: refOf(ref),
    topic,
    event,
    payload: payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? payload as Record<string, unknown> : {},
  };
}

function refOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return null;
}

/** One outgoing frame whose payload is JSON text already. */
export function encode(vsn: Vsn, joinRef: string | null, ref: string | null, topicJson: string, event: string, payloadJson: string): string {
  const joinRefJson = joinRef === null ? 'null' : JSON.stringify(joinRef);
  const refJson = ref === null ? 'null' : JSON.stringify(ref);
  const eventJson = JSON.stringify(event);
  if (vsn === '2.0.0') return `[${joinRefJson},${refJson},${topicJson},${eventJson},${payloadJson}]`;
  return `{"join_ref":${joinRefJson},"ref":${refJson},"topic":${topicJson},"event":${eventJson},"payload":${payloadJson}}`;
}

/** The reply to a client push: {"status":"ok"|"error","response":…}. */
export function reply(vsn: Vsn, message: PhoenixMessage, status: 'ok' | 'error', response: unknown): string {
  return encode(vsn, message.joinRef, message.ref, JSON.stringify(message.topic), 'phx_reply', `{"status":"${status}","response":${JSON.stringify(response)}}`);
}

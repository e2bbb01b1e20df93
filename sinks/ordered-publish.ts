// A batch published pipelined (every message sent before the first
// acknowledgement is awaited) without giving up per-key commit order: when
// some acknowledgement fails, the batch is published again from the first
// message not acknowledged, with everything after it, in order. Messages
// after that point that did arrive arrive again, with the same id (NATS
// JetStream drops them by Nats-Msg-Id; a RabbitMQ consumer sees the same
// message_id), so the first appearance of every message keeps commit order.

export interface Sent {
  /** Settles when the server acknowledged (or refused) the message. */
  acknowledged: Promise<unknown>;
}

export interface PublishOutcome {
  /** Index of the first message not acknowledged; the batch's length when all were. */
  next: number;
  error?: unknown;
}

/**
 * Sends `messages[from…]` one after another (`send` resolves once a message is
 * handed to the connection, after any backpressure), then waits for all the
 * acknowledgements.
 */
export async function publishFrom<M>(messages: readonly M[], from: number, send: (message: M, index: number) => Promise<Sent> | Sent): Promise<PublishOutcome> {
  const acknowledgements: Promise<unknown>[] = [];
  let sendError: unknown;
  let sendFailed = false;
  for (let index = from; index < messages.length; index++) {
    try {
      const { acknowledged } = await send(messages[index], index);
      // Handled now, so that a refusal arriving while later messages are still being sent is no unhandled rejection.
      acknowledged.catch(() => undefined);
      acknowledgements.push(acknowledged);
    } catch (error) {
      sendError = error;
      sendFailed = true;
      break;
    }
  }
  const results = await Promise.allSettled(acknowledgements);
  const failed = results.findIndex((result) => result.status === 'rejected');
  if (failed >= 0) return { next: from + failed, error: (results[failed] as PromiseRejectedResult).reason };
  if (sendFailed) return { next: from + acknowledgements.length, error: sendError };
  return { next: messages.length };
}

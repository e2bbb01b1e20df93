// The sink's exchange: used as it is when it exists (whatever its type and
// flags: an operator's exchange is theirs), declared topic and durable when
// it does not. A plain assertExchange would close the channel with 406
// PRECONDITION_FAILED when an existing exchange has other settings, so a
// passive check (on a throwaway channel, since a missing exchange closes
// the channel with 404) comes first.
import type { ChannelModel } from 'amqplib';
import { WalrelayError } from '../../relay/errors.js';

export async function declareExchange(model: ChannelModel, exchange: string, sink: string, declared: (exchange: string) => void): Promise<void> {
  // "" is the default exchange, which always exists and cannot be declared.
  if (exchange === '') return;
  if (await exists(model, exchange)) return;
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.assertExchange(exchange, 'topic', { durable: true });
    declared(exchange);
  } catch (error) {
    throw new WalrelayError('RABBITMQ_EXCHANGE', `cannot declare exchange "${exchange}" (sink ${sink}): ${(error as Error).message}`, {
      hint: 'create the exchange yourself, or give the user the configure permission on it',
    });
  } finally {
    await channel.close().catch(() => undefined);
  }
}

async function exists(model: ChannelModel, exchange: string): Promise<boolean> {
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.checkExchange(exchange);
    await channel.close().catch(() => undefined);
    return true;
  } catch (error) {
    // 404: the broker closed the channel; anything else is the connection's problem and surfaces as such.
    if ((error as { code?: number }).code === 404) return false;
    throw error;
  }
}

// walrelay browser client (ESM, no build step).
//
//   import { connect } from './walrelay-client.js';
//   const feed = connect('ws://127.0.0.1:8080/', {
//     token,                                   // optional JWT (sent as ?token=)
//     subscriptions: [{ id: 'orders', table: 'public.orders', ops: ['insert', 'update'], filter: 'status=eq.paid' }],
//     onChange: (event, subscriptionId) => { ... },
//     onError: (error) => { ... },             // error frames ({code, message, id})
//     onStatus: (status) => { ... },           // 'connecting' | 'open' | 'closed'
//   });
//   feed.close();
//
// Reconnects with backoff and resumes each subscription from the last event
// it received ("since"); when the server no longer holds that event
// (resume_gap), onError is called and the subscription restarts live.
export function connect(url, options = {}) {
  const subscriptions = new Map((options.subscriptions ?? []).map((subscription) => [subscription.id, { ...subscription }]));
  const lastSeen = new Map();
  let socket = null;
  let closed = false;
  let delay = 500;
  let timer = null;

  const status = (value) => options.onStatus?.(value);

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function subscribeFrame(subscription) {
    const since = lastSeen.get(subscription.id);
    // After a reconnect, resume after the last event seen instead of asking for the recent ones again.
    if (since) {
      const { recent, ...rest } = subscription;
      return { type: 'subscribe', ...rest, since };
    }
    return { type: 'subscribe', ...subscription };
  }

  function open() {
    status('connecting');
    const target = new URL(url);
    if (options.token) target.searchParams.set('token', options.token);
    socket = new WebSocket(target);
    socket.onopen = () => {
      delay = 500;
      status('open');
      for (const subscription of subscriptions.values()) send(subscribeFrame(subscription));
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === 'change') {
        lastSeen.set(frame.subscription, frame.event.id);
        options.onChange?.(frame.event, frame.subscription);
      } else if (frame.type === 'error') {
        if (frame.code === 'resume_gap' && subscriptions.has(frame.id)) {
          lastSeen.delete(frame.id);
          send(subscribeFrame(subscriptions.get(frame.id)));
        }
        options.onError?.(frame);
      }
    };
    socket.onclose = () => {
      status('closed');
      if (closed) return;
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 10_000);
    };
  }

  open();
  return {
    subscribe(subscription) {
      subscriptions.set(subscription.id, { ...subscription });
      send(subscribeFrame(subscription));
    },
    unsubscribe(id) {
      subscriptions.delete(id);
      lastSeen.delete(id);
      send({ type: 'unsubscribe', id });
    },
    /** Replaces the token without reconnecting (before the old one expires). */
    refresh(token) {
      options.token = token;
      send({ type: 'auth', token });
    },
    close() {
      closed = true;
      clearTimeout(timer);
      socket?.close(1000, 'client closed');
    },
  };
}

// Waiting on conditions with deadlines (tests/README.md: never sleep as synchronisation).

// Resolves when `pred()` (sync or async) is truthy, checking every `intervalMs`; rejects with
// `message` (and the last value seen by `describe`, when given) at the deadline.
export async function eventually(pred, { timeoutMs = 5000, intervalMs = 10, message = 'condition', describe } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      if (await pred()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const extra = describe ? `; last: ${describe()}` : lastError ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}${extra}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// Resolves with the first `event` emitted by `emitter` for which `filter(ctx)` holds; rejects
// at the deadline, or on `failOn` events (e.g. 'disconnected') when given.
export function waitEvent(emitter, event, { timeoutMs = 5000, filter = () => true, failOn = [] } = {}) {
  return new Promise((resolve, reject) => {
    const cleanups = [];
    const done = (fn, v) => {
      for (const c of cleanups) c();
      fn(v);
    };
    const onEvent = (ctx) => {
      if (filter(ctx)) done(resolve, ctx);
    };
    emitter.on(event, onEvent);
    cleanups.push(() => emitter.off(event, onEvent));
    for (const bad of failOn) {
      const onBad = (ctx) => done(reject, new Error(`${bad} while waiting for ${event}: ${JSON.stringify(ctx)}`));
      emitter.on(bad, onBad);
      cleanups.push(() => emitter.off(bad, onBad));
    }
    const timer = setTimeout(() => done(reject, new Error(`timed out after ${timeoutMs} ms waiting for ${event}`)), timeoutMs);
    cleanups.push(() => clearTimeout(timer));
  });
}

// Records every listed event of `emitter` as {event, ctx}, in order.
export function record(emitter, events) {
  const log = [];
  for (const event of events) emitter.on(event, (ctx) => log.push({ event, ctx }));
  return log;
}

// The part SyncWatch and UserSubscription share: an SDK subscription this object created and
// owns, its event handlers, and the subscribe / unsubscribe / destroy surface. A subclass calls
// _own(centrifuge, subscription, handlers) once in its constructor and implements
// _onUnsubscribed() (destroy calls it, since the SDK emits nothing after removeSubscription).
import { Emitter } from './emitter.js';

export class OwnedSubscription extends Emitter {
  _own(centrifuge, subscription, handlers) {
    this._centrifuge = centrifuge;
    this.subscription = subscription;
    this._handlers = handlers;
    for (const [event, fn] of Object.entries(handlers)) subscription.on(event, fn);
  }

  subscribe() {
    this.subscription.subscribe();
    return this;
  }

  unsubscribe() {
    this.subscription.unsubscribe();
    return this;
  }

  // Unsubscribes, removes the SDK subscription from the client and drops every listener.
  destroy() {
    this.unsubscribe();
    this._onUnsubscribed();
    for (const [event, fn] of Object.entries(this._handlers)) this.subscription.off(event, fn);
    this._centrifuge.removeSubscription(this.subscription);
    this.removeAllListeners();
  }
}

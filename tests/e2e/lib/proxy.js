// A TCP proxy on 127.0.0.1 (port 0) between a browser and chorusd, to act on a browser's
// network from the test: the page's WebSocket dials the proxy, each accepted socket is paired
// with a fresh connection to the target port.
//
//   const proxy = await TcpProxy.start(node.port);
//   proxy.wsUrl             ws://127.0.0.1:PROXY/connection/websocket
//   proxy.cut()             destroys every current pair (an abrupt close, no close frame)
//   proxy.down() / up()     cut, then accept-and-destroy new connections until up()
//   proxy.pause() / resume()  stop / restart reading from the chorusd side: the kernel buffers
//                           fill and the node's queue for those connections grows
//   proxy.retarget(port)    new pairs dial this port (another node of a cluster); current ones
//                           are left as they are (cut() them)
// The target may restart on the same port: each new pair dials it again.
import net from 'node:net';

export class TcpProxy {
  // Resolves once listening on 127.0.0.1 with a kernel-chosen port.
  static async start(targetPort, targetHost = '127.0.0.1') {
    const proxy = new TcpProxy(targetPort, targetHost);
    await new Promise((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', resolve);
    });
    return proxy;
  }

  constructor(targetPort, targetHost) {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
    this.pairs = new Set(); // {client, upstream}
    this.accepted = 0; // pairs made (refused ones not counted)
    this.isUp = true;
    this.paused = false; // applies to current and new pairs
    this.server = net.createServer((client) => this._accept(client));
  }

  get port() {
    return this.server.address().port;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/connection/websocket`;
  }

  _accept(client) {
    client.on('error', () => {});
    if (!this.isUp) {
      client.destroy();
      return;
    }
    this.accepted++;
    const upstream = net.connect(this.targetPort, this.targetHost);
    upstream.on('error', () => {});
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('close', end);
    upstream.on('close', end);
    // Browser -> chorusd: always forwarded (pongs, commands).
    client.on('data', (d) => upstream.write(d));
    client.on('end', () => upstream.end());
    // chorusd -> browser: by hand rather than pipe(), so that pause() is not undone by a
    // 'drain' of the browser side.
    upstream.on('data', (d) => {
      if (!client.write(d)) {
        upstream.pause();
        client.once('drain', () => {
          if (!this.paused) upstream.resume();
        });
      }
    });
    upstream.on('end', () => client.end());
    if (this.paused) upstream.pause();
  }

  cut() {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  down() {
    this.isUp = false;
    this.cut();
  }

  up() {
    this.isUp = true;
  }

  retarget(targetPort, targetHost = this.targetHost) {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
  }

  pause() {
    this.paused = true;
    for (const { upstream } of this.pairs) upstream.pause();
  }

  resume() {
    this.paused = false;
    for (const { upstream } of this.pairs) upstream.resume();
  }

  async close() {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

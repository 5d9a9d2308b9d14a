import type net from 'node:net';

/**
 * Relays bytes between two connected sockets until both directions are finished.
 *
 * - Backpressure both ways: a slow reader pauses the other side's reads (stream.pipe).
 * - Half-close: a FIN from one side becomes a FIN (shutdown of writing) on the other; the other
 *   direction keeps flowing. Both sockets must be created with allowHalfOpen: true.
 * - Reset: an error or RST on one side resets the other (resetAndDestroy), so peers see what
 *   happened instead of a clean FIN.
 * - Accounting: bytes per direction; `lastActivity` for the engine's idle sweep.
 */
export interface RelayStats {
  up: number;
  down: number;
  lastActivity: number;
}

export class Relay {
  readonly stats: RelayStats = { up: 0, down: 0, lastActivity: Date.now() };
  readonly done: Promise<{ reset: boolean; error?: Error }>;
  #finish!: (r: { reset: boolean; error?: Error }) => void;
  #closed = 0;
  #reset = false;
  #error: Error | undefined;

  /** `client` → `server` is "up"; `server` → `client` is "down". */
  constructor(
    readonly client: net.Socket,
    readonly server: net.Socket,
  ) {
    this.done = new Promise((r) => (this.#finish = r));
    const st = this.stats;
    client.on('data', (d: Buffer) => {
      st.up += d.length;
      st.lastActivity = Date.now();
    });
    server.on('data', (d: Buffer) => {
      st.down += d.length;
      st.lastActivity = Date.now();
    });
    client.pipe(server);
    server.pipe(client);
    const onError = (peer: net.Socket) => (e: Error) => {
      if (!this.#reset) {
        this.#reset = true;
        this.#error = e;
      }
      if (!peer.destroyed) peer.resetAndDestroy();
    };
    client.on('error', onError(server));
    server.on('error', onError(client));
    const onClose = (): void => {
      if (++this.#closed === 2) this.#finish({ reset: this.#reset, ...(this.#error === undefined ? {} : { error: this.#error }) });
    };
    // A socket fully closed (both directions) while its peer still has data in flight: the
    // peer finishes on its own (pipe end / FIN); if the closed one was reset, the peer is reset.
    client.once('close', onClose);
    server.once('close', onClose);
    // When both directions have ended, close both promptly.
    const maybeClose = (): void => {
      if (client.readableEnded && server.readableEnded) {
        if (client.writableFinished) client.destroy();
        else client.once('finish', () => client.destroy());
        if (server.writableFinished) server.destroy();
        else server.once('finish', () => server.destroy());
      }
    };
    client.on('end', maybeClose);
    server.on('end', maybeClose);
  }

  /** Reset both sides now (idle timeout, policy, shutdown deadline). */
  abort(): void {
    this.#reset = true;
    if (!this.client.destroyed) this.client.resetAndDestroy();
    if (!this.server.destroyed) this.server.resetAndDestroy();
  }
}

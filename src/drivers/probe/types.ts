/** One open probe socket, bound to a path's local address. */
export interface ProbeSocket {
  send(datagram: Buffer): void;
  close(): void;
}

/** Opens probe sockets (udp.ts satisfies this; services/paths/measure.ts receives one injected). */
export interface ProbeTransport {
  open(o: { local: string; target: string; port: number; onMessage: (b: Buffer) => void; onError: (e: Error) => void }): Promise<ProbeSocket>;
}

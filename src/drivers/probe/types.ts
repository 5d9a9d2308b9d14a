/** One open probe socket, bound to a path's local address. */
export interface ProbeSocket {
  send(datagram: Buffer): void;
  close(): void;
}

export interface ProbeOpenOptions {
  /** The path's own address: the probes' source. */
  local: string;
  /** The responder: an echo service (UDP) or any host that answers ping (ICMP). */
  target: string;
  /** UDP port of the echo responder (unused by ICMP). */
  port: number;
  /** The path's interface: a transport that can pin its socket to it (SO_BINDTODEVICE) does. */
  device?: string;
  /** One probe payload coming back (the transport has already matched it to this socket). */
  onMessage: (b: Buffer) => void;
  onError: (e: Error) => void;
}

/**
 * Opens probe sockets (udp.ts: UDP echo, RFC 862; icmp.ts: ICMP / ICMPv6 echo on ping sockets);
 * services/paths/measure.ts receives them injected. The payload is opaque to the transport: it
 * carries it to the responder and hands back what returns.
 */
export interface ProbeTransport {
  /** How the target is shown (`10.0.0.1:7`, `icmp:10.0.0.1`). */
  describe?(target: string, port: number): string;
  open(o: ProbeOpenOptions): Promise<ProbeSocket>;
}

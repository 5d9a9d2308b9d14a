import net from 'node:net';

/**
 * Connection load generator (its own process, so the proxy's CPU is measured alone).
 * A connection counts only if the echo server's byte came back through it; every other
 * outcome (refused, reset, closed without the echo, timed out) is a failure, reported and
 * left out of the rate.
 *   node connload.js rate HOST PORT TOTAL CONCURRENCY   → {"rate": ok conns/s, "ok": n, "failed": n, "errors": {…}}
 *   node connload.js latency HOST PORT COUNT            → {"medianMs": …, "meanMs": …, "failed": n} (sequential: connect → 1-byte echo back, then close)
 *   node connload.js hold HOST PORT COUNT               → opens COUNT idle connections, prints {"open": n}, waits for SIGTERM
 *   node connload.js echo PORT [HOST]                   → an echo server on HOST (127.0.0.1):PORT
 */
/** Connect, send a byte, await its echo, close; resolves with ms from connect() to the echoed byte. */
function once(host: string, port: number, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let echoedAt: bigint | undefined;
    const t0 = process.hrtime.bigint();
    const c = net.connect({ host, port, noDelay: true }, () => c.write('x'));
    const t = setTimeout(() => c.destroy(new Error('timeout')), timeoutMs);
    c.once('data', (d: Buffer) => {
      if (d[0] === 0x78) echoedAt = process.hrtime.bigint();
      c.end();
    });
    c.on('close', () => {
      clearTimeout(t);
      if (echoedAt !== undefined) resolve(Number(echoedAt - t0) / 1e6);
      else reject(new Error('closed without the echo'));
    });
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

const reason = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

async function main(): Promise<void> {
  const [mode, a, b, c, d] = process.argv.slice(2);
  if (mode === 'echo') {
    const s = net.createServer({ noDelay: true }, (sock) => {
      sock.on('data', (x) => sock.write(x));
      sock.on('end', () => sock.end());
      sock.on('error', () => sock.destroy());
    });
    s.listen(Number(a), b ?? '127.0.0.1', 65535, () => process.stdout.write(JSON.stringify({ listening: Number(a) }) + '\n'));
    return;
  }
  const host = a!;
  const port = Number(b);
  if (mode === 'rate') {
    const total = Number(c);
    const conc = Number(d);
    let started = 0;
    let ok = 0;
    let failed = 0;
    const errors: Record<string, number> = {};
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: conc }, async () => {
        while (started < total) {
          started++;
          await once(host, port).then(
            () => ok++,
            (e: unknown) => {
              failed++;
              errors[reason(e)] = (errors[reason(e)] ?? 0) + 1;
            },
          );
        }
      }),
    );
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(JSON.stringify({ rate: ok / s, ok, failed, errors }) + '\n');
  } else if (mode === 'latency') {
    const n = Number(c);
    const times: number[] = [];
    let failed = 0;
    for (let i = 0; i < n; i++) {
      try {
        // time to the echoed byte (the first byte back), the close is not counted
        times.push(await once(host, port));
      } catch {
        // a path that does not work: say so after 3 failures instead of waiting out every one
        if (++failed >= 3) break;
      }
    }
    times.sort((x, y) => x - y);
    const m = times.length >> 1;
    const medianMs = times.length === 0 ? undefined : times.length % 2 === 1 ? times[m] : (times[m - 1]! + times[m]!) / 2;
    process.stdout.write(JSON.stringify({ medianMs, meanMs: times.reduce((x, y) => x + y, 0) / Math.max(1, times.length), failed }) + '\n');
  } else if (mode === 'hold') {
    const n = Number(c);
    const socks: net.Socket[] = [];
    for (let i = 0; i < n; i += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, n - i) }, () =>
          new Promise<void>((resolve) => {
            const s = net.connect({ host, port }, () => resolve());
            s.on('error', () => resolve());
            socks.push(s);
          }),
        ),
      );
    }
    process.stdout.write(JSON.stringify({ open: socks.filter((s) => !s.destroyed).length }) + '\n');
    process.on('SIGTERM', () => process.exit(0));
  }
}
void main();

import net from 'node:net';

/**
 * Connection load generator (its own process, so the proxy's CPU is measured alone).
 *   node connload.js rate HOST PORT TOTAL CONCURRENCY   → {"rate": conns/s}
 *   node connload.js latency HOST PORT COUNT            → {"meanMs": …} (sequential connect + 1-byte echo)
 *   node connload.js hold HOST PORT COUNT               → opens COUNT idle connections, prints {"open": n}, waits for SIGTERM
 *   node connload.js echo PORT [HOST]                   → an echo server on HOST (127.0.0.1):PORT
 */
function once(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host, port, noDelay: true }, () => c.write('x'));
    c.once('data', () => {
      c.end();
    });
    c.on('close', () => resolve());
    c.on('error', reject);
  });
}

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
    let failed = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: conc }, async () => {
        while (started < total) {
          started++;
          await once(host, port).catch(() => failed++);
        }
      }),
    );
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(JSON.stringify({ rate: total / s, failed }) + '\n');
  } else if (mode === 'latency') {
    const n = Number(c);
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await once(host, port);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((x, y) => x - y);
    process.stdout.write(JSON.stringify({ medianMs: times[Math.floor(n / 2)], meanMs: times.reduce((x, y) => x + y, 0) / n }) + '\n');
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

/**
 * The command line that runs a timing-sensitive simulator tool (probe, echo responder, peer) at
 * a modest real-time priority, so that a busy machine's scheduling is not counted as link delay.
 *
 * SCHED_RR, not FIFO: Node is many threads (main, libuv pool, V8 workers), and equal-priority
 * FIFO threads never yield to each other on a CPU; round-robin slices between them.
 * RLIMIT_RTTIME guards the machine: a tool that runs `guardS` seconds at real-time priority
 * without ever sleeping is in a busy loop, and the kernel ends it (SIGXCPU, then SIGKILL one
 * second later) instead of letting it starve every normal process on the box for minutes.
 * (The delay line sets its own guard: build/delayline --realtime.)
 */
export function realtime(argv: readonly string[], guardS = 10): [string, string[]] {
  const soft = Math.round(guardS * 1e6);
  return ['prlimit', [`--rttime=${soft}:${soft + 1_000_000}`, 'chrt', '-r', '5', ...argv]];
}

/**
 * Memoise a per-policy-name lookup for `ttlMs`: the store's own index follows commits by other
 * processes (the CLI) within 250 ms, and these settings reads should not hit SQLite per subflow.
 */
export function cached<T>(read: (name: string) => T, ttlMs = 1000, now: () => number = Date.now): { get(name: string): T; clear(): void } {
  const m = new Map<string, { v: T; at: number }>();
  return {
    get(name) {
      const hit = m.get(name);
      const t = now();
      if (hit !== undefined && t - hit.at < ttlMs) return hit.v;
      if (m.size > 4096) m.clear();
      const v = read(name);
      m.set(name, { v, at: t });
      return v;
    },
    clear: () => m.clear(),
  };
}

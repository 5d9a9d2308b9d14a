// /metrics carries the fast path's counts (relayed by it / handed to the JS path) and the SNI
// front's outcomes, as counters that follow the engine's and the fronts' running totals.
import t from 'tap';

t.test('/metrics: fast path and SNI outcome counters follow the running totals', async (t) => {
  const { startServer } = await import('./web-helpers.js');
  const fast = { fast: 7, handedOver: 2 };
  let sni: Record<string, number> = { sni: 4, 'no-sni': 1, DC_TLS_SNI_TIMEOUT: 1 };
  const h = await startServer({}, (d) => ({ ...d, fastPath: () => ({ ...fast }), sniOutcomes: () => ({ ...sni }) }));
  t.teardown(() => h.close());
  const c = h.client();
  const m1 = (await c.get('/metrics')).text;
  t.match(m1, /# TYPE duocell_proxy_fast_path_total counter/);
  t.match(m1, /duocell_proxy_fast_path_total\{path="fast"\} 7\n/);
  t.match(m1, /duocell_proxy_fast_path_total\{path="js"\} 2\n/);
  t.match(m1, /duocell_sni_outcomes_total\{outcome="sni"\} 4\n/);
  t.match(m1, /duocell_sni_outcomes_total\{outcome="DC_TLS_SNI_TIMEOUT"\} 1\n/);
  fast.fast = 10;
  sni = { ...sni, sni: 9, DC_TLS_MALFORMED: 2 };
  const m2 = (await c.get('/metrics')).text;
  t.match(m2, /duocell_proxy_fast_path_total\{path="fast"\} 10\n/, 'follows the running total');
  t.match(m2, /duocell_sni_outcomes_total\{outcome="sni"\} 9\n/);
  t.match(m2, /duocell_sni_outcomes_total\{outcome="DC_TLS_MALFORMED"\} 2\n/, 'a new outcome appears');
});

t.test('/metrics without a fast path or SNI front has neither series', async (t) => {
  const { startServer } = await import('./web-helpers.js');
  const h = await startServer({}, (d) => ({ ...d, fastPath: undefined, sniOutcomes: undefined }));
  t.teardown(() => h.close());
  const m = (await h.client().get('/metrics')).text;
  t.notMatch(m, /duocell_proxy_fast_path_total\{/);
  t.notMatch(m, /duocell_sni_outcomes_total\{/);
});

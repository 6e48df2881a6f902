// The entry of the scenario: `workerd test` calls `test()` (and `workerd serve` a request to
// `fetch()`), which calls every other worker.
// Each call carries a call id; the caller logs `call <id>` and the callee `serve <id>`, so the
// test knows every true link from the logs alone, whatever the span ids.

async function post(binding, path, id) {
  console.log('call', id);
  const response = await binding.fetch(`http://api.test${path}`, { method: 'POST', body: id });
  return [response.status, await response.text()];
}

async function scenario(env) {
  // Service-binding fetch, three deep: gateway → api → store (JS RPC) → Counter (DO RPC).
  const [status, text] = await post(env.API, '/items', 'g1');
  if (status !== 200) throw new Error(`items: ${status} ${text}`);

  // JS RPC to a WorkerEntrypoint.
  console.log('call', 'g2');
  const echoed = await env.STORE.echo('g2');
  if (echoed !== 'echo g2') throw new Error(`echo: ${echoed}`);

  // A Durable Object by stub fetch, then by RPC: one object, one call at a time.
  const stub = env.COUNTER.get(env.COUNTER.idFromName('shared'));
  console.log('call', 'g3');
  const counted = await (await stub.fetch('http://counter.test/count', { method: 'POST', body: 'g3' })).text();
  console.log('call', 'g4');
  const total = await stub.increment('g4');
  if (Number(counted) + 1 !== total) throw new Error(`counter: ${counted} then ${total}`);

  // Concurrent identical calls: the same request, three times at once, by fetch and by RPC.
  await Promise.all([
    post(env.API, '/echo', 'g5'), post(env.API, '/echo', 'g6'), post(env.API, '/echo', 'g7'),
    (console.log('call', 'g8'), env.STORE.echo('g8')),
    (console.log('call', 'g9'), env.STORE.echo('g9')),
    (console.log('call', 'g10'), env.STORE.echo('g10')),
  ]);

  // A thrown exception: the api worker throws, and the error reaches its caller.
  try {
    await post(env.API, '/boom', 'g11');
    throw new Error('/boom did not throw');
  } catch (error) {
    if (error.message !== 'api exploded on g11') throw error;
  }

  // An RPC method that throws: the rejection reaches the caller.
  console.log('call', 'g12');
  try {
    await env.STORE.fail('g12');
    throw new Error('fail() did not throw');
  } catch (error) {
    if (error.message !== 'store failed on g12') throw error;
  }
  console.log('scenario done');
}

export default {
  async test(controller, env, ctx) {
    await scenario(env);
  },

  async fetch(request, env, ctx) {
    await scenario(env);
    return new Response('scenario done\n');
  },
};

// One Durable Object serving several requests at once. workerd attributes the spans and logs of
// a busy object to its newest active request, so which invocation they show under depends on
// timing: tracetree must build such a stream without error and without claiming certainty it
// lacks.
import { DurableObject } from 'cloudflare:workers';

export class Busy extends DurableObject {
  async work(id) {
    console.log('serve', id);
    await scheduler.wait(5);
    const count = ((await this.ctx.storage.get('count')) ?? 0) + 1;
    await this.ctx.storage.put('count', count);
    console.log('done', id);
    return count;
  }

  async fetch(request) {
    const id = await request.text();
    return new Response(String(await this.work(id)));
  }
}

export default {
  async test(controller, env, ctx) {
    const stub = env.BUSY.get(env.BUSY.idFromName('busy'));
    const results = await Promise.all([
      stub.work('m1'),
      stub.work('m2'),
      stub.fetch('http://busy.test/', { method: 'POST', body: 'm3' }).then((r) => r.text()),
      stub.work('m4'),
    ]);
    console.log('counts', results.map(Number).sort().join(','));
  },
};

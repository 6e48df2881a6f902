// A WorkerEntrypoint reached by JS RPC, and the Durable Object it and the gateway use.
import { DurableObject, WorkerEntrypoint } from 'cloudflare:workers';

export class Store extends WorkerEntrypoint {
  async getItem(id) {
    console.log('serve', id);
    const stub = this.env.COUNTER.get(this.env.COUNTER.idFromName('shared'));
    console.log('call', `${id}.1`);
    const count = await stub.increment(`${id}.1`);
    return { id, count };
  }

  async echo(id) {
    console.log('serve', id);
    return `echo ${id}`;
  }

  async fail(id) {
    console.log('serve', id);
    throw new Error(`store failed on ${id}`);
  }
}

export class Counter extends DurableObject {
  async increment(id) {
    console.log('serve', id);
    const count = ((await this.ctx.storage.get('count')) ?? 0) + 1;
    await this.ctx.storage.put('count', count);
    return count;
  }

  async fetch(request) {
    const id = await request.text();
    console.log('serve', id);
    return new Response(String((await this.ctx.storage.get('count')) ?? 0));
  }
}

export default {
  async fetch() {
    return new Response('store: use JS RPC', { status: 404 });
  },
};

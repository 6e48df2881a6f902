// A stateless HTTP worker: reached by service-binding fetch, calls the store by JS RPC.
export default {
  async fetch(request, env, ctx) {
    const id = await request.text();
    console.log('serve', id);
    const path = new URL(request.url).pathname;
    if (path === '/items') {
      console.log('call', `${id}.1`);
      const item = await env.STORE.getItem(`${id}.1`);
      return Response.json(item);
    }
    if (path === '/echo') return new Response(`echo ${id}`);
    if (path === '/boom') throw new Error(`api exploded on ${id}`);
    return new Response('not found', { status: 404 });
  },
};

// An event the tail worker cannot serialize: a diagnostics-channel message with a cycle
// (structured clone keeps cycles; JSON cannot hold one).
import { channel } from 'node:diagnostics_channel';

export default {
  async test(controller, env, ctx) {
    console.log('before');
    const message = { name: 'loop' };
    message.self = message;
    channel('tracetree:cycle').publish(message);
    console.log('after');
  },
};

// A minimal XEP-0114 external component over a raw TCP socket, so a test can stand in for a
// server-side service (here the focus at focus.localhost) and see exactly what the server routes
// to it. The handshake is the one of XEP-0114 §3: open a `jabber:component:accept` stream to the
// component domain, read the stream id, send <handshake>hex(SHA-1(id + secret))</handshake>, wait
// for an empty <handshake/>. Every stanza received afterwards lands in `inbox` (ltx elements, the
// Inbox of ../js/xmpp.mjs, so tests can wait for stanzas with a timeout and a clear message).
//
//   const c = await connectComponent({ port, domain: 'focus.localhost', secret });
//   const iq = await c.inbox.waitFor((el) => el.is('iq'), { desc: 'an iq' });
//   c.send(xml('iq', { type: 'result', from: c.domain, to: iq.attrs.from, id: iq.attrs.id }));
//   await c.close();

import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { Parser } from '@xmpp/xml';
import { Inbox } from '../js/xmpp.mjs';

export async function connectComponent({ port, host = '127.0.0.1', domain, secret, timeout = 5000 }) {
  const socket = connect(port, host);
  const parser = new Parser();
  const inbox = new Inbox(`component ${domain}`);
  const rawIn = [];
  let ready = false;
  let closed = false;

  const handshake = new Promise((resolve, reject) => {
    const fail = (why) => reject(new Error(`component ${domain}: ${why}; received: ${rawIn.join('')}`));
    const timer = setTimeout(() => fail(`no handshake answer within ${timeout} ms`), timeout);
    socket.on('error', (e) => fail(e.message));
    socket.on('close', () => {
      closed = true;
      if (!ready) fail('connection closed during the handshake');
    });
    parser.on('error', (e) => fail(`unparseable input: ${e.message}`));
    parser.on('start', (stream) => {
      const digest = createHash('sha1').update(`${stream.attrs.id}${secret}`).digest('hex');
      socket.write(`<handshake>${digest}</handshake>`);
    });
    parser.on('element', (el) => {
      if (ready) return inbox.push(el);
      if (el.is('handshake')) {
        ready = true;
        clearTimeout(timer);
        resolve();
      } else fail(`unexpected ${el}`);
    });
  });

  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    rawIn.push(chunk);
    parser.write(chunk);
  });
  socket.on('connect', () =>
    socket.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' ` +
        `xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`,
    ),
  );

  try {
    await handshake;
  } catch (e) {
    socket.destroy();
    throw e;
  }

  return {
    domain,
    inbox,
    rawIn,
    send(el) {
      if (closed) throw new Error(`component ${domain}: connection closed, cannot send ${el}`);
      socket.write(el.toString());
    },
    /** Close the stream and the socket; resolves once the socket is closed (or after 2 s). */
    async close() {
      if (closed) return;
      const gone = new Promise((resolve) => socket.once('close', resolve));
      socket.end('</stream:stream>');
      const timer = setTimeout(() => socket.destroy(), 2000);
      await gone;
      clearTimeout(timer);
    },
  };
}

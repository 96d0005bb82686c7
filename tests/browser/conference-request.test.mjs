// The stock Jitsi client (lib-jitsi-meet 2.6726.2, V21) in Chromium connects to oxbridge, over
// XMPP-over-WebSocket and over BOSH, and gets as far as joining the conference room:
//
//   1. the page connects anonymously (JitsiConnection, SASL ANONYMOUS) over the given transport;
//   2. its conference request (jitsi-protocol.md §2.1) reaches the focus address focus.localhost,
//      where this test is connected as an XEP-0114 component, from the browser's anonymous
//      full JID (UUID-like node, §1.4) and names the room and the client's properties;
//   3. like jicofo, the test then joins the room as the focus account (focus@auth.localhost,
//      nick `focus`, creating it) and answers ready='true' with focusjid;
//   4. the browser joins the MUC: the focus sees its occupant presence carrying its real JID, the
//      page reports CONFERENCE_JOINED (it received its own presence back) and has recognised the
//      focus occupant (real JID focus@auth.localhost/…, needed before any Jingle);
//   5. the transport really was the one asked for (Chromium's WebSocket / HTTP request log).
//
// Run from tests/: node --test --test-concurrency=1 browser/   (needs target/debug/oxbridge and
// /usr/bin/chromium). On failure the browser console and the server log are printed. The
// assertions are the 2021 client's, so this page stays on it whatever OXBRIDGE_LJM_BUNDLE says.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, FOCUS_COMPONENT, FOCUS_JID } from '../js/server.mjs';
import { xml, NS, focusJoin, roomJid, mucItem, uniqueRoom, resourceOf, bare, withQuery, UUID_LIKE } from '../js/xmpp.mjs';
import { connectComponent } from './component.mjs';
import { servePage, openBrowser, pageEvent } from './browser.mjs';

const SECRET = 'focus-component-secret';
let server; // oxbridge with focus.localhost as an XEP-0114 component
let focusComponent; // this test, standing in for the focus component
let site; // the test page
let failed = false;

before(async () => {
  server = await startServer({ extraToml: `\n[focus]\nenabled = false\n[[xmpp.components]]\ndomain = "${FOCUS_COMPONENT}"\nsecret = "${SECRET}"\n` });
  focusComponent = await connectComponent({ port: server.componentPort, domain: FOCUS_COMPONENT, secret: SECRET });
  site = await servePage();
});
after(async () => {
  await focusComponent?.close();
  await site?.close();
  if (failed || process.env.OXBRIDGE_TEST_LOG) server?.dumpLog();
  await server?.stop();
});

async function joinsThroughFocus(transport, checkTransport) {
  const room = uniqueRoom('browser');
  const url = withQuery(server[transport], { room }); // the web app appends ?room=
  const browser = await openBrowser(`${site.url}v21`);
  let focus;
  try {
    const since = focusComponent.inbox.mark;
    await browser.page.evaluate((opts) => window.start(opts), { serviceUrl: url, room });
    const myJid = await pageEvent(browser.page, 'CONNECTION_ESTABLISHED');

    // 2. The conference request arrives at the component, from the browser.
    const iq = await focusComponent.inbox.waitFor(
      (el) => el.is('iq') && el.getChild('conference', NS.FOCUS)?.attrs.room === roomJid(room),
      { timeout: 10_000, since, desc: `conference request for ${roomJid(room)}` },
    );
    const conf = iq.getChild('conference', NS.FOCUS);
    assert.equal(iq.attrs.type, 'set', `${iq}`);
    assert.equal(iq.attrs.to, FOCUS_COMPONENT, `${iq}`);
    assert.equal(iq.attrs.from, myJid, `conference request comes from the page's JID: ${iq}`);
    assert.equal(bare(myJid).split('@')[1], 'localhost', `anonymous JID on the main domain: ${myJid}`);
    assert.match(bare(myJid).split('@')[0], UUID_LIKE, `anonymous node is UUID-like: ${myJid}`);
    assert.ok(resourceOf(myJid), `full JID: ${myJid}`);
    assert.ok(conf.attrs['machine-uid'], `machine-uid: ${iq}`);
    const props = Object.fromEntries(conf.getChildren('property').map((p) => [p.attrs.name, p.attrs.value]));
    assert.ok('disableRtx' in props, `V21 always sends disableRtx: ${iq}`);

    // 3. The focus creates the room, then the request is answered.
    focus = await focusJoin(server, room);
    focusComponent.send(
      xml('iq', { type: 'result', from: FOCUS_COMPONENT, to: iq.attrs.from, id: iq.attrs.id },
        xml('conference', { xmlns: NS.FOCUS, room: roomJid(room), ready: 'true', focusjid: FOCUS_JID },
          xml('property', { name: 'authentication', value: 'false' }))),
    );

    // 4. The browser joins the room.
    const presence = await focus.inbox.waitFor(
      (el) => el.is('presence') && !el.attrs.type && el.attrs.from?.startsWith(`${roomJid(room)}/`) && mucItem(el)?.attrs.jid === myJid,
      { timeout: 10_000, desc: `occupant presence with real jid ${myJid}` },
    );
    const nick = resourceOf(presence.attrs.from);
    const joinedAs = await pageEvent(browser.page, 'CONFERENCE_JOINED');
    assert.equal(joinedAs, nick, 'the page joined under the nick the focus sees');
    // The room's occupants came before the self-presence, with real JIDs: the page knows its focus.
    const focusMucJid = await browser.page.evaluate(() => window.conference.room.focusMucJid);
    assert.equal(focusMucJid, `${roomJid(room)}/focus`, 'the page recognised the focus occupant by its real JID');

    checkTransport(browser);
  } catch (e) {
    failed = true;
    e.message += `\n----- browser console -----\n${browser.consoleText()}\n----- end of browser console -----`;
    throw e;
  } finally {
    await browser.close();
    await focus?.close();
  }
}

test('lib-jitsi-meet over WebSocket: conference request reaches the focus, then the MUC join', { timeout: 60_000 }, () =>
  joinsThroughFocus('ws', ({ websockets, requests }) => {
    assert.ok(websockets.some((u) => u.startsWith(server.ws)), `WebSocket opened to ${server.ws}: ${websockets}`);
    assert.ok(!requests.some((r) => r.includes('/http-bind')), `no BOSH request: ${requests.join('\n')}`);
  }));

test('lib-jitsi-meet over BOSH: conference request reaches the focus, then the MUC join', { timeout: 60_000 }, () =>
  joinsThroughFocus('bosh', ({ websockets, requests }) => {
    assert.ok(requests.some((r) => r.startsWith(`POST ${server.bosh}`)), `BOSH POSTs to ${server.bosh}: ${requests.join('\n')}`);
    assert.equal(websockets.length, 0, `no WebSocket: ${websockets}`);
  }));

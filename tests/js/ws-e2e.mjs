// nats.ws (the browser client) over WebSocket, with nats.js on the TCP port: each check prints
// "ok <name>" or throws (exit 1).
// Usage: node ws-e2e.mjs ws://127.0.0.1:8080 nats://127.0.0.1:4222 [--with-py]
// With --with-py, a nats-py client on the TCP port (tests/test_websocket.py) serves "py.upper"
// and waits for one message on "py.from-ws".
import WebSocket from "ws";
globalThis.WebSocket = WebSocket; // nats.ws needs a global WebSocket (Node 20 has none)

const { connect: connectWs, headers, StringCodec } = await import("nats.ws");
const { connect: connectTcp } = await import("nats");

const [wsUrl, natsUrl, withPy] = process.argv.slice(2);
const sc = StringCodec();

function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
}

async function collect(sub, count) {
  const got = [];
  for await (const m of sub) {
    got.push(m);
    if (got.length === count) break;
  }
  return got;
}

const ws = await connectWs({ servers: wsUrl, name: "nats.ws-e2e" });
const ws2 = await connectWs({ servers: wsUrl });
const tcp = await connectTcp({ servers: natsUrl, name: "nats.js-tcp" });

// publish / subscribe between two websocket clients, with wildcards
{
  const exact = ws.subscribe("ws.a.b", { max: 3 });
  const full = ws.subscribe("ws.>", { max: 3 });
  await ws.flush();
  for (let i = 0; i < 3; i++) ws2.publish("ws.a.b", sc.encode(`m${i}`));
  for (const sub of [exact, full]) {
    const got = await collect(sub, 3);
    check(got.map((m) => sc.decode(m.data)).join(",") === "m0,m1,m2", `order on ${sub.getSubject()}`);
  }
  console.log("ok ws-pubsub");
}

// across transports: websocket publisher, TCP subscriber, and back
{
  const onTcp = tcp.subscribe("cross.to-tcp", { max: 1 });
  const onWs = ws.subscribe("cross.to-ws", { max: 1 });
  await tcp.flush();
  await ws.flush();
  ws2.publish("cross.to-tcp", sc.encode("from ws"));
  tcp.publish("cross.to-ws", sc.encode("from tcp"));
  const [a] = await collect(onTcp, 1);
  const [b] = await collect(onWs, 1);
  check(sc.decode(a.data) === "from ws" && sc.decode(b.data) === "from tcp", "cross-transport");
  console.log("ok cross-transport");
}

// request / reply: a TCP service answers a websocket requester
{
  const svc = tcp.subscribe("cross.echo");
  (async () => {
    for await (const m of svc) m.respond(sc.encode(sc.decode(m.data).toUpperCase()));
  })();
  await tcp.flush();
  const reply = await ws.request("cross.echo", sc.encode("hello"), { timeout: 2000 });
  check(sc.decode(reply.data) === "HELLO", "request reply");
  svc.unsubscribe();
  console.log("ok request-reply");
}

// headers from a websocket client to a TCP one
{
  const sub = tcp.subscribe("cross.hdr", { max: 1 });
  await tcp.flush();
  const h = headers();
  h.set("X-Trace", "abc");
  ws.publish("cross.hdr", sc.encode("body"), { headers: h });
  const [m] = await collect(sub, 1);
  check(m.headers.get("X-Trace") === "abc" && sc.decode(m.data) === "body", "headers");
  console.log("ok headers");
}

// a message larger than one frame's worth of writes, both ways
{
  const big = "x".repeat(300000);
  const sub = ws.subscribe("ws.big", { max: 1 });
  await ws.flush();
  ws2.publish("ws.big", sc.encode(big));
  const [m] = await collect(sub, 1);
  check(sc.decode(m.data) === big, "big payload");
  console.log("ok big-payload");
}

// nats-py on the TCP port (run by the Python test)
if (withPy === "--with-py") {
  const reply = await ws.request("py.upper", sc.encode("from nats.ws"), { timeout: 5000 });
  check(sc.decode(reply.data) === "FROM NATS.WS", "nats-py service");
  ws.publish("py.from-ws", sc.encode("hi nats-py"));
  await ws.flush();
  console.log("ok nats-py");
}

await ws.drain();
await ws2.drain();
await tcp.drain();
console.log("ok drained");

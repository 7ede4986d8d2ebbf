// nats.js against a NATS server: each check prints "ok <name>" or throws (exit 1).
// Usage: node e2e.mjs nats://127.0.0.1:4222
import { connect, headers, StringCodec, ErrorCode } from "nats";

const url = process.argv[2];
const sc = StringCodec();

async function collect(sub, count) {
  const got = [];
  for await (const m of sub) {
    got.push(m);
    if (got.length === count) break;
  }
  return got;
}

function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
}

const nc = await connect({ servers: url, name: "nats.js-e2e" });
const other = await connect({ servers: url });

// publish / subscribe, with wildcards
{
  const exact = nc.subscribe("js.a.b", { max: 3 });
  const star = nc.subscribe("js.*.b", { max: 3 });
  const full = nc.subscribe("js.>", { max: 3 });
  await nc.flush();
  for (let i = 0; i < 3; i++) other.publish("js.a.b", sc.encode(`m${i}`));
  for (const sub of [exact, star, full]) {
    const got = await collect(sub, 3);
    check(got.map((m) => sc.decode(m.data)).join(",") === "m0,m1,m2", `order on ${sub.getSubject()}`);
  }
  console.log("ok pubsub-wildcards");
}

// request / reply
{
  const svc = nc.subscribe("js.echo");
  (async () => {
    for await (const m of svc) m.respond(sc.encode(sc.decode(m.data).toUpperCase()));
  })();
  await nc.flush();
  const reply = await other.request("js.echo", sc.encode("hello"), { timeout: 2000 });
  check(sc.decode(reply.data) === "HELLO", "request reply");
  svc.unsubscribe();
  console.log("ok request-reply");
}

// headers
{
  const sub = nc.subscribe("js.hdr", { max: 1 });
  await nc.flush();
  const h = headers();
  h.set("X-Trace", "abc");
  h.append("X-Multi", "1");
  h.append("X-Multi", "2");
  other.publish("js.hdr", sc.encode("body"), { headers: h });
  const [m] = await collect(sub, 1);
  check(m.headers.get("X-Trace") === "abc", "header value");
  check(m.headers.values("X-Multi").join(",") === "1,2", "repeated header");
  check(sc.decode(m.data) === "body", "payload with headers");
  console.log("ok headers");
}

// queue group: every message to exactly one member
{
  const counts = [0, 0, 0];
  const subs = counts.map((_, i) => {
    const s = nc.subscribe("js.q", { queue: "workers" });
    (async () => { for await (const _m of s) counts[i]++; })();
    return s;
  });
  await nc.flush();
  for (let i = 0; i < 300; i++) other.publish("js.q", sc.encode(String(i)));
  await other.flush();
  await nc.flush();
  // The subscriptions' async loops may still be working through delivered messages.
  const sum = () => counts.reduce((a, b) => a + b, 0);
  for (let waited = 0; sum() < 300 && waited < 5000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const total = sum();
  check(total === 300, `queue total ${total}`);
  check(counts.filter((c) => c > 0).length >= 2, "queue spread");
  subs.forEach((s) => s.unsubscribe());
  console.log("ok queue-group");
}

// no responders
{
  try {
    await other.request("js.nobody", sc.encode("?"), { timeout: 2000 });
    check(false, "expected no responders");
  } catch (err) {
    check(err.code === ErrorCode.NoResponders, `no responders, got ${err.code}`);
  }
  console.log("ok no-responders");
}

await other.drain();
await nc.drain();
console.log("ok drained");

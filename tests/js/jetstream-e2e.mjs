// nats.js JetStream against a NATS server with JetStream: each check prints "ok <name>" or
// throws (exit 1). Usage: node jetstream-e2e.mjs nats://127.0.0.1:4222
import { connect, StringCodec, AckPolicy } from "nats";

const url = process.argv[2];
const sc = StringCodec();

function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
}

const nc = await connect({ servers: url, name: "nats.js-jetstream" });
const jsm = await nc.jetstreamManager();
const js = nc.jetstream();

// streams and publish acknowledgements
{
  await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
  const acks = [];
  for (let i = 0; i < 5; i++) acks.push(await js.publish(`orders.${i}`, sc.encode(`o${i}`)));
  check(acks.map((a) => a.seq).join(",") === "1,2,3,4,5", "sequences");
  const dup = await js.publish("orders.x", sc.encode("x"), { msgID: "a" });
  const again = await js.publish("orders.x", sc.encode("x"), { msgID: "a" });
  check(again.duplicate && again.seq === dup.seq, "duplicate");
  const info = await jsm.streams.info("ORDERS");
  check(info.state.messages === 6, "stream info");
  const m = await jsm.streams.getMessage("ORDERS", { seq: 2 });
  check(sc.decode(m.data) === "o1", "get message");
  console.log("ok streams");
}

// a durable pull consumer: fetch and ack
{
  await jsm.consumers.add("ORDERS", { durable_name: "proc", ack_policy: AckPolicy.Explicit });
  const c = await js.consumers.get("ORDERS", "proc");
  const got = [];
  const batch = await c.fetch({ max_messages: 10, expires: 1000 });
  for await (const m of batch) {
    got.push(sc.decode(m.data));
    m.ack();
  }
  check(got.length === 6 && got[0] === "o0", `fetched ${got}`);
  const ci = await c.info();
  check(ci.delivered.stream_seq === 6, "consumer info");
  console.log("ok pull-consumer");
}

// key-value
{
  const kv = await js.views.kv("settings", { history: 3 });
  await kv.put("colour", sc.encode("red"));
  await kv.put("colour", sc.encode("blue"));
  const e = await kv.get("colour");
  check(sc.decode(e.value) === "blue" && e.revision === 2, "kv get");
  const h = await kv.history({ key: "colour" });
  const values = [];
  for await (const entry of h) values.push(sc.decode(entry.value));
  check(values.join(",") === "red,blue", `history ${values}`);
  await kv.delete("colour");
  const gone = await kv.get("colour");
  check(gone === null || gone.operation === "DEL", "kv delete");
  const keys = [];
  await kv.put("size", sc.encode("L"));
  for await (const k of await kv.keys()) keys.push(k);
  check(keys.join(",") === "size", `keys ${keys}`);
  console.log("ok kv");
}

// object store: chunked objects
{
  const os = await js.views.os("files");
  const data = new Uint8Array(300_000);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const info = await os.putBlob({ name: "blob.bin" }, data);
  check(info.size === data.length && info.chunks > 1, `put ${info.size} ${info.chunks}`);
  const back = await os.getBlob("blob.bin");
  check(back.length === data.length && back.every((b, i) => b === data[i]), "get blob");
  const list = await os.list();
  check(list.length === 1 && list[0].name === "blob.bin", "list");
  await os.delete("blob.bin");
  check((await os.get("blob.bin")) === null, "deleted");
  console.log("ok object-store");
}

await nc.close();

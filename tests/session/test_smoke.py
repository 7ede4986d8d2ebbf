"""A first end-to-end check over a real socket: CONNECT, SUB, PUB, MSG."""

from tests.helpers import RawClient


async def test_pub_sub_roundtrip(server):
    client = await RawClient.connect(server.port)
    await client.send(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\nPUB foo 5\r\nhello\r\n')
    await client.expect(b"MSG foo 1 5\r\nhello\r\n")
    await client.aclose()


async def test_reference_server_answers(reference_server):
    client = await RawClient.connect(reference_server.port)
    assert b'"version":"2.15.1"' in client.info
    await client.aclose()

"""JetStream on one trionats server: streams kept in SQLite, their API in each account.

Modules: `errors` (the API's error codes), `config` (stream configurations, checked and
completed as nats-server does), `storage` (a stream's messages: in memory, written through to
SQLite in WAL mode by one worker thread), `stream` (limits, de-duplication, expectations),
`api` (the `$JS.API.>` requests and their JSON), `service` (the server's JetStream: accounts,
the in-process receivers in their sublists, replies, start and stop), `figures` (/jsz, /varz).
"""

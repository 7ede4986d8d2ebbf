"""One account's JetStream: its streams, its limits and its API figures."""

from __future__ import annotations

from pathlib import Path

from . import config as stream_config
from . import errors
from .storage import StreamDB
from .stream import Stream


class JSAccount:
    """The streams of an account with JetStream enabled (`limits`: options.AccountJetStream)."""

    def __init__(self, name: str, limits, store_dir: Path, *, sync_always: bool) -> None:
        self.name = name
        self.limits = limits
        self.store_dir = store_dir
        self.sync_always = sync_always
        self.streams: dict[str, Stream] = {}
        #: $JS.API requests served and refused (the `api` figures).
        self.api_total = 0
        self.api_errors = 0

    def stream_dir(self, name: str) -> Path:
        return self.store_dir / self.name / "streams" / name

    def usage(self) -> tuple[int, int]:
        """Bytes stored in memory and in files."""
        memory = sum(s.bytes for s in self.streams.values() if s.storage == "memory")
        files = sum(s.bytes for s in self.streams.values() if s.storage == "file")
        return memory, files

    def consumer_count(self) -> int:
        return sum(len(s.consumers) for s in self.streams.values())

    def limits_json(self) -> dict:
        limits = self.limits
        return {
            "max_memory": limits.max_memory,
            "max_storage": limits.max_store,
            "max_streams": limits.max_streams,
            "max_consumers": limits.max_consumers,
            "max_ack_pending": limits.max_ack_pending,
            "memory_max_stream_bytes": limits.memory_max_stream_bytes,
            "storage_max_stream_bytes": limits.storage_max_stream_bytes,
            "max_bytes_required": limits.max_bytes_required,
        }

    def check_new(self, config: dict, replacing: Stream | None = None) -> None:
        """The account's rules for a stream's configuration: subjects no other stream
        captures, its limits (stream count, max bytes)."""
        limits = self.limits
        if replacing is None and 0 <= limits.max_streams <= len(self.streams):
            raise errors.maximum_streams()
        if limits.max_bytes_required and config["max_bytes"] <= 0:
            raise errors.max_bytes_required()
        per_stream = (limits.memory_max_stream_bytes if config["storage"] == "memory"
                      else limits.storage_max_stream_bytes)  # fmt: skip
        if per_stream > 0 and (config["max_bytes"] <= 0 or config["max_bytes"] > per_stream):
            raise errors.ApiError(400, 10122, "stream max bytes exceeds account limit max stream bytes")
        for other in self.streams.values():
            if other is replacing:
                continue
            for mine in config["subjects"]:
                if any(stream_config.subjects_collide(mine, theirs)
                       for theirs in other.config["subjects"]):  # fmt: skip
                    raise errors.subjects_overlap()

    def new_stream(self, config: dict, created_ns: int) -> Stream:
        db = None
        if config["storage"] == "file":
            db = StreamDB(self.stream_dir(config["name"]), sync_always=self.sync_always)
        stream = Stream(self.name, config, created_ns, db)
        self.streams[config["name"]] = stream
        return stream

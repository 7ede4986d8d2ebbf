"""The server's accounts: each one its own subject space (a Sublist) and its own counters.

How it works: an `Account` holds the Sublist its clients subscribe in and publish through
(a client's `Dispatcher` is given its account's sublist once it has authenticated), so two
accounts never see each other's messages, whatever the subjects. `Accounts` is the registry,
name -> Account, built once from the configured names: the global account `$G` (where
`authorization` users, tokens and anonymous clients land), then the configured accounts in
file order, then the system account `$SYS` when the server has one and the configuration
does not define it.

Traffic figures (/accstatz) are not counted on the PUB path: each client keeps its own; an
account's figures are its live clients' plus what it kept of those that left (`client_left`),
less what clients had done before they joined it (`client_joined`). Routes carry every
account: a route's interest in an account lives in that account's sublist
(routes/accounts.py).

Pure code: no trio, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .. import defaults
from .sublist import Sublist

GLOBAL_ACCOUNT = "$G"
SYSTEM_ACCOUNT = "$SYS"


class Account:
    """One account: its sublist, and the figures of its clients that have closed."""

    __slots__ = ("name", "sublist", "in_msgs", "in_bytes", "out_msgs", "out_bytes",
                 "slow_consumers", "total_connections")  # fmt: skip

    def __init__(self, name: str, cache_size: int = defaults.SUBLIST_CACHE_SIZE) -> None:
        self.name = name
        self.sublist = Sublist(cache_size)
        #: Messages and bytes of clients that left this account, less those of joining
        #: clients from before they joined (live clients keep their own: a snapshot adds both).
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        #: Slow consumer events of this account's clients.
        self.slow_consumers = 0
        #: Clients that authenticated into this account since the start.
        self.total_connections = 0

    def client_joined(self, client) -> None:
        """A client moved into this account (it authenticated): only what it does from
        now on is this account's, so its figures so far are taken off the totals."""
        self.total_connections += 1
        self.in_msgs -= client.in_msgs
        self.in_bytes -= client.in_bytes
        self.out_msgs -= client.out_msgs
        self.out_bytes -= client.out_bytes

    def client_left(self, client) -> None:
        """A client of this account closed or moved away: its figures stay here."""
        self.in_msgs += client.in_msgs
        self.in_bytes += client.in_bytes
        self.out_msgs += client.out_msgs
        self.out_bytes += client.out_bytes

    def __repr__(self) -> str:
        return f"<Account {self.name}>"


class Accounts:
    """The registry: name -> Account, in a fixed order (see the module docstring)."""

    def __init__(
        self,
        names: Iterable[str] = (),
        *,
        system_account: str = "",
        cache_size: int = defaults.SUBLIST_CACHE_SIZE,
    ) -> None:
        """`names`: the configured accounts; `system_account`: the system account's name
        ("" for none). It is created if no configured account has that name."""
        self.system_account = system_account
        self._accounts: dict[str, Account] = {}
        for name in (GLOBAL_ACCOUNT, *names):
            if name not in self._accounts:
                self._accounts[name] = Account(name, cache_size)
        if system_account and system_account not in self._accounts:
            self._accounts[system_account] = Account(system_account, cache_size)
        self.global_account = self._accounts[GLOBAL_ACCOUNT]

    @property
    def configured(self) -> bool:
        """Whether any account besides the global and the system one exists."""
        return any(name not in (GLOBAL_ACCOUNT, self.system_account) for name in self._accounts)

    def get(self, name: str) -> Account | None:
        return self._accounts.get(name)

    def __getitem__(self, name: str) -> Account:
        return self._accounts[name]

    def __contains__(self, name: object) -> bool:
        return name in self._accounts

    def __iter__(self) -> Iterator[Account]:
        return iter(self._accounts.values())

    def __len__(self) -> int:
        return len(self._accounts)

    def names(self) -> list[str]:
        """/accountz's list: the system account first, then `$G`, then the others."""
        names = list(self._accounts)
        if self.system_account in self._accounts:
            names.remove(self.system_account)
            names.insert(0, self.system_account)
        return names

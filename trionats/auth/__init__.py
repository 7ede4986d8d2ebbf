"""Authentication (users, passwords, tokens; bcrypt off the event loop) and permissions."""

from .permissions import SYS_QUEUE, CompiledPermissions, PublishCheck
from .users import Authenticator, Failure, Identity, PendingPassword, is_bcrypt

__all__ = [
    "SYS_QUEUE",
    "Authenticator",
    "CompiledPermissions",
    "Failure",
    "Identity",
    "PendingPassword",
    "PublishCheck",
    "is_bcrypt",
]

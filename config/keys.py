"""API keys and their scopes: parsed once at start-up, compared in constant time.

Three scopes: `ingest` (bring logs), `read` (see them), `admin` (change state; an admin
key may also read and ingest). Keys come from `SLUICE_INGEST_KEYS`, `SLUICE_READ_KEYS`,
`SLUICE_ADMIN_KEYS` (comma-separated) and/or `SLUICE_KEYS_FILE`, whose lines are

    # name      scopes          sha256 of the key
    shipper     ingest          sha256:9f86d081884c7d65...
    grafana     read            sha256:...
    ops         admin           sha256:...

so the file never holds a key itself. `python -m config.keys new NAME SCOPES` makes a key
and prints its line. Only the SHA-256 of a presented key is compared: keys are random
256-bit tokens, so a fast hash is enough, and `hmac.compare_digest` against every entry
keeps the time independent of which (if any) entry matches.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
from dataclasses import dataclass

SCOPES = ("ingest", "read", "admin")


class KeyDefinitionError(ValueError):
    """A key definition Sluice cannot use; the message says where."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Key:
    name: str
    scopes: frozenset[str]
    sha256: str
    secret: str = ""  # the key itself when it came from the environment (Flower needs it)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class Keyring:
    keys: tuple[Key, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.keys)

    def find(self, presented: str | None) -> Key | None:
        """The key whose hash matches `presented`, checking every entry either way."""
        if not presented:
            return None
        wanted = digest(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.sha256, wanted):
                found = key
        return found

    def by_digest(self, sha256: str) -> Key | None:
        """The key a signed session names (the signature, not this lookup, is the secret)."""
        return next((k for k in self.keys if hmac.compare_digest(k.sha256, sha256)), None)

    def admin_secrets(self) -> list[str]:
        return [k.secret for k in self.keys if "admin" in k.scopes and k.secret]


def from_lists(ingest: str, read: str, admin: str) -> list[Key]:
    keys = []
    for scope, raw in (("ingest", ingest), ("read", read), ("admin", admin)):
        for n, secret in enumerate(s.strip() for s in raw.split(",")):
            if not secret:
                continue
            if len(secret) < 16:
                raise KeyDefinitionError(
                    f"SLUICE_{scope.upper()}_KEYS: key {n + 1} is shorter than 16 characters"
                )
            keys.append(Key(f"{scope}-{n + 1}", frozenset({scope}), digest(secret), secret))
    return keys


def from_file(text: str, source: str) -> list[Key]:
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        where = f"{source} line {number}"
        if len(parts) != 3:
            raise KeyDefinitionError(f"{where}: expected 'name scopes sha256:<hex>', got {line!r}")
        name, scopes, hashed = parts
        wanted = frozenset(s for s in scopes.split(",") if s)
        unknown = wanted - set(SCOPES)
        if not wanted or unknown:
            raise KeyDefinitionError(
                f"{where}: scopes must be among {', '.join(SCOPES)}, got {scopes!r}"
            )
        hex_part = hashed.removeprefix("sha256:")
        if not hashed.startswith("sha256:") or len(hex_part) != 64:
            raise KeyDefinitionError(f"{where}: the key must be given as sha256:<64 hex digits>")
        try:
            bytes.fromhex(hex_part)
        except ValueError:
            raise KeyDefinitionError(f"{where}: {hashed!r} is not hexadecimal") from None
        keys.append(Key(name, wanted, hex_part.lower()))
    return keys


def new_key() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def main(argv: list[str]) -> int:
    """`python -m config.keys new NAME SCOPES`: a new key, and its line for SLUICE_KEYS_FILE."""
    if len(argv) != 3 or argv[0] != "new":
        print("usage: python -m config.keys new NAME ingest|read|admin[,...]", file=sys.stderr)
        return 2
    name, scopes = argv[1], argv[2]
    key = new_key()
    from_file(f"{name} {scopes} sha256:{digest(key)}", "arguments")  # validates
    print(f"key (give it to the client, shown once): {key}")
    print(f"line for SLUICE_KEYS_FILE: {name} {scopes} sha256:{digest(key)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""A profile's keys (`ccs key add`): the proxy keeps to one key while it works (the provider's prompt cache
is per account), moves to the next when it is rate limited or out of quota, letting it cool down as the
router lets a target, and sets aside for good one the provider rejects."""

from __future__ import annotations

import logging
import re
import time

from ..keys import mask
from .errors import ProxyError
from .router import retry_after

ROTATES = (402, 429)  # payment required (an exhausted balance), rate limited or out of quota: the next key
REJECTED = (401, 403)  # this key is no good: set aside
# An exhausted quota that a provider answers with a 400
QUOTA = re.compile(r"insufficient_quota|exceeded your (?:current )?quota|quota (?:has been )?exceeded|"
                   r"insufficient (?:balance|credits?)", re.I)

log = logging.getLogger("ccswitch.proxy")


class KeyPool:
    """The keys of one profile, its own first; `order()` is the keys to try for the next request."""

    def __init__(self, profile: str, keys: list[str], cooldown: float):
        self.profile = profile
        self.keys = keys
        self.cooldown = cooldown
        self.current = 0
        self.until: dict[str, float] = {}  # key -> when it may be tried again
        self.rejected: set[str] = set()

    def order(self) -> list[str]:
        """Usable keys from the current one on; none when every key is rejected or cooling."""
        now = time.monotonic()
        turn = self.keys[self.current:] + self.keys[:self.current]
        return [key for key in turn if key not in self.rejected and self.until.get(key, 0) <= now]

    def failed(self, key: str, error: ProxyError) -> bool:
        """Whether the error was the key's (then the next key is worth trying with the same request)."""
        if error.status in REJECTED:
            self.rejected.add(key)
            log.warning("ccs proxy: profile '%s': key %s was rejected (%s); set aside (`ccs doctor` checks each "
                        "key)", self.profile, mask(key), error.status)
        elif error.status in ROTATES or (error.status == 400 and QUOTA.search(error.message)):
            self.until[key] = time.monotonic() + (retry_after(error) or self.cooldown)
            log.warning("ccs proxy: profile '%s': key %s %s; the next key takes over", self.profile, mask(key),
                        "is out of quota" if error.status != 429 else "is rate limited")
        else:
            return False
        self.current = (self.keys.index(key) + 1) % len(self.keys)
        return True

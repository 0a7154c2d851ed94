"""Cloud Storage's object naming rules, for entry points where the emulator is laxer.

fake-gcs-server stores names GCS refuses (`.`, `..`, CR/LF, over 1024 bytes), so the local
stack checks them itself where a name comes in (the GCS front's writes, the gallery's
upload). The rules are Google's "Object naming requirements"
(https://cloud.google.com/storage/docs/objects#naming); everything else (control
characters, `#`, `?`, `[`, emoji, right-to-left marks) is allowed, only discouraged.
The messages are the JSON API's where they are on record (the empty name:
googleapis/nodejs-storage#2248; CR/LF: googleapis/google-cloud-go#196), otherwise the
requirement in the documentation's words.
"""

from __future__ import annotations

MAX_NAME_BYTES = 1024
ACME_PREFIX = ".well-known/acme-challenge/"


def name_error(name: str) -> str | None:
    """Why GCS would refuse to create an object called `name`, or None when it would not."""
    if not name:
        return "You must specify an object name."
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "Object name is not valid Unicode (it cannot be encoded as UTF-8)."
    if size > MAX_NAME_BYTES:
        return f"Object name is {size} bytes long in UTF-8; the maximum is {MAX_NAME_BYTES} bytes."
    if "\r" in name or "\n" in name:
        return "Disallowed unicode characters present in object name"
    if name in (".", ".."):
        return f"Object name {name!r} is not valid: objects cannot be named . or .."
    if name.startswith(ACME_PREFIX):
        return f"Object names cannot start with {ACME_PREFIX}"
    return None

"""Object names GCS accepts that break naive code: non-Latin-1 text, the control characters
GCS allows, URL and shell metacharacters. Shared by the unit and integration tests."""

HOSTILE_NAMES = [
    "写真/漢字の名前.jpg",  # CJK
    "emoji 📷🎉.jpg",  # astral plane
    "rtl \u200fשלום\u202e.jpg",  # right-to-left mark and override
    "ctl \x01\x1b[31m\x7f.jpg",  # control characters GCS allows (not CR/LF)
    "100% sure.jpg",
    "hash#tag.jpg",
    "what?.jpg",
    "a+b=c.jpg",
    "  spaced  out  .jpg",
    "quote\"and'apos.jpg",
]

"""Small ICC v4 matrix/TRC RGB profiles built from published colorimetry.

They give a HEIF that describes its colour with an ``nclx`` box (ITU-T H.273 code points)
the same LittleCMS conversion to sRGB as an ICC-tagged image (docs/architecture.md,
"Inputs"). The layout follows ICC.1:2022 (header, tag table, ``XYZ``, ``para`` and ``mluc``
tags); the primaries are adapted to the D50 connection space with the Bradford transform.
"""

from __future__ import annotations

import struct

Vector = tuple[float, ...]
Matrix = tuple[Vector, ...]
XY = tuple[float, float]
Curve = tuple[int, Vector]  # ICC parametric curve: function type, parameters

# The profile connection space's white (ICC.1:2022, 7.2.16).
D50 = (0.9642, 1.0, 0.8249)
_BRADFORD: Matrix = (
    (0.8951, 0.2664, -0.1614),
    (-0.7502, 1.7135, 0.0367),
    (0.0389, -0.0685, 1.0296),
)

# Parametric curves (ICC ``para`` function types 0 and 3) taking encoded values to linear.
SRGB_CURVE: Curve = (3, (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))  # IEC 61966-2-1
# The inverse of the BT.709 OETF.
BT709_CURVE: Curve = (3, (1 / 0.45, 1 / 1.099, 0.099 / 1.099, 1 / 4.5, 0.081))


def gamma_curve(gamma: float) -> Curve:
    return (0, (gamma,))


def rgb_profile(description: str, colorants: Matrix, curve: Curve = SRGB_CURVE) -> bytes:
    """A display profile: ``colorants`` are the red, green and blue XYZ already in D50."""
    kind, params = curve
    para = b"para\0\0\0\0" + struct.pack(">HH", kind, 0) + b"".join(map(_s15, params))
    tags = [
        (b"desc", _text(description)),
        (b"cprt", _text("No copyright, use freely")),
        (b"wtpt", _xyz(D50)),
        (b"rXYZ", _xyz(colorants[0])),
        (b"gXYZ", _xyz(colorants[1])),
        (b"bXYZ", _xyz(colorants[2])),
        (b"rTRC", para),
        (b"gTRC", para),
        (b"bTRC", para),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = struct.pack(">I4sI", offset + len(body), b"", 0x04300000)
    header += b"mntrRGB XYZ " + bytes(12) + b"acsp" + bytes(28) + _xyz(D50)[8:]
    header += bytes(128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + body


def colorants(red: XY, green: XY, blue: XY, white: XY) -> Matrix:
    """The red, green and blue XYZ (rows) of an RGB space given by its chromaticities,
    scaled so that R = G = B = 1 is ``white`` at Y = 1, then adapted to D50."""
    primaries = _transpose(tuple(_xyz_of(xy) for xy in (red, green, blue)))
    scale = _apply(_inverse(primaries), _xyz_of(white))
    to_d50 = _adaptation(_xyz_of(white), D50)
    columns = (tuple(primaries[row][col] * scale[col] for row in range(3)) for col in range(3))
    return tuple(_apply(to_d50, column) for column in columns)


def _adaptation(source: Vector, target: Vector) -> Matrix:
    """Bradford chromatic adaptation from the ``source`` white to the ``target`` white."""
    src, dst = _apply(_BRADFORD, source), _apply(_BRADFORD, target)
    gains = tuple(tuple(dst[i] / src[i] if i == j else 0.0 for j in range(3)) for i in range(3))
    return _product(_inverse(_BRADFORD), _product(gains, _BRADFORD))


def _xyz_of(xy: XY) -> Vector:
    x, y = xy
    return (x / y, 1.0, (1 - x - y) / y)


def _apply(m: Matrix, v: Vector) -> Vector:
    return tuple(sum(m[row][k] * v[k] for k in range(3)) for row in range(3))


def _product(a: Matrix, b: Matrix) -> Matrix:
    return tuple(
        tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3)
    )


def _transpose(m: Matrix) -> Matrix:
    return tuple(tuple(m[row][col] for row in range(3)) for col in range(3))


def _inverse(m: Matrix) -> Matrix:
    """The inverse of a 3x3 matrix (adjugate over determinant)."""
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    adjugate = (
        (e * i - f * h, c * h - b * i, b * f - c * e),
        (f * g - d * i, a * i - c * g, c * d - a * f),
        (d * h - e * g, b * g - a * h, a * e - b * d),
    )
    return tuple(tuple(value / det for value in row) for row in adjugate)


def _s15(value: float) -> bytes:
    """ICC s15Fixed16Number."""
    return struct.pack(">i", round(value * 65536))


def _xyz(xyz: Vector) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(map(_s15, xyz))


def _text(text: str) -> bytes:
    body = text.encode("utf-16-be")
    record = struct.pack(">II", 1, 12) + b"enUS" + struct.pack(">II", len(body), 28)
    return b"mluc\0\0\0\0" + record + body  # one record: count, size, language, length, offset

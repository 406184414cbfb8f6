"""A small QR code reader for tests (ISO/IEC 18004): the byte-mode text of an undamaged
code of error correction level M, versions 1-10 — enough to check what the web client's
verify view draws (views/verify.js) without trusting the encoder that drew it. No error
correction: a test's code is read exactly as drawn."""

from __future__ import annotations

# Level M: (error correction codewords per block, [(blocks, data codewords per block)]).
_BLOCKS_M = {
    1: (10, [(1, 16)]),
    2: (16, [(1, 28)]),
    3: (26, [(1, 44)]),
    4: (18, [(2, 32)]),
    5: (24, [(2, 43)]),
    6: (16, [(4, 27)]),
    7: (18, [(4, 31)]),
    8: (22, [(2, 38), (2, 39)]),
    9: (22, [(3, 36), (2, 37)]),
    10: (26, [(4, 43), (1, 44)]),
}
_ALIGNMENT = {
    1: [],
    2: [6, 18],
    3: [6, 22],
    4: [6, 26],
    5: [6, 30],
    6: [6, 34],
    7: [6, 22, 38],
    8: [6, 24, 42],
    9: [6, 26, 46],
    10: [6, 28, 50],
}
_MASKS = [
    lambda r, c: (r + c) % 2 == 0,
    lambda r, c: r % 2 == 0,
    lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0,
    lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: (r * c) % 2 + (r * c) % 3 == 0,
    lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0,
]


def _function_modules(version: int) -> set[tuple[int, int]]:
    """Finders with separators and format areas, timing lines, alignment patterns, the
    version areas and the dark module: everything that is not data."""
    n = 17 + 4 * version
    taken: set[tuple[int, int]] = set()
    for r0, c0 in ((0, 0), (0, n - 8), (n - 8, 0)):
        taken |= {(r, c) for r in range(r0, r0 + 8) for c in range(c0, c0 + 8)}
    taken |= {(8, c) for c in range(9)} | {(r, 8) for r in range(9)}
    taken |= {(8, c) for c in range(n - 8, n)} | {(r, 8) for r in range(n - 8, n)}
    taken |= {(6, c) for c in range(n)} | {(r, 6) for r in range(n)}
    centres = _ALIGNMENT[version]
    for r in centres:
        for c in centres:
            if (r, c) in ((6, 6), (6, centres[-1]), (centres[-1], 6)):
                continue  # under a finder
            taken |= {(r + i, c + j) for i in range(-2, 3) for j in range(-2, 3)}
    if version >= 7:
        taken |= {(r, c) for r in range(n - 11, n - 8) for c in range(6)}
        taken |= {(r, c) for r in range(6) for c in range(n - 11, n - 8)}
    return taken


def _codewords(dark: list[list[bool]], version: int, mask: int) -> list[int]:
    n = len(dark)
    skip = _function_modules(version)
    bits: list[int] = []
    col, upward = n - 1, True
    while col > 0:
        if col == 6:
            col -= 1  # the vertical timing line
        for r in range(n - 1, -1, -1) if upward else range(n):
            for c in (col, col - 1):
                if (r, c) not in skip:
                    bits.append(int(dark[r][c] ^ _MASKS[mask](r, c)))
        col -= 2
        upward = not upward
    return [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - 7, 8)]


def _data(codewords: list[int], version: int) -> list[int]:
    _, groups = _BLOCKS_M[version]
    sizes = [size for count, size in groups for _ in range(count)]
    blocks: list[list[int]] = [[] for _ in sizes]
    it = iter(codewords)
    for i in range(max(sizes)):
        for b, size in enumerate(sizes):
            if i < size:
                blocks[b].append(next(it))
    return [byte for block in blocks for byte in block]


def _byte_mode(data: list[int], version: int) -> bytes | None:
    bits = "".join(f"{b:08b}" for b in data)
    if bits[:4] != "0100":
        return None
    width = 8 if version < 10 else 16
    length = int(bits[4 : 4 + width], 2)
    start = 4 + width
    if start + 8 * length > len(bits):
        return None
    return bytes(int(bits[start + 8 * i : start + 8 * i + 8], 2) for i in range(length))


def read_qr(dark: list[list[bool]]) -> list[bytes]:
    """The byte-mode texts the code reads as under each of the eight masks whose padding
    is the standard one (0xEC 0x11 ...): one for a well-formed code."""
    n = len(dark)
    version = (n - 17) // 4
    if version not in _BLOCKS_M or n != 17 + 4 * version:
        raise ValueError(f"{n} modules: not a version 1-10 code")
    found = []
    for mask in range(8):
        data = _data(_codewords(dark, version, mask), version)
        text = _byte_mode(data, version)
        if text is None:
            continue
        used = (4 + (8 if version < 10 else 16) + 8 * len(text) + 4 + 7) // 8  # with the terminator
        padding = data[used:]
        if padding == [(0xEC, 0x11)[i % 2] for i in range(len(padding))]:
            found.append(text)
    return found

#!/usr/bin/env python3
"""Print the CUDA targets embedded in a shared library, without cuobjdump.

nvcc embeds fatbinaries: a header (magic 0xBA55ED50, u16 version, u16 header size, u64 body
size) followed by entries (u16 kind: 1 = PTX, 2 = ELF machine code; u32 entry header size at 4;
u64 payload size at 8; u32 SM number at 28; u64 flags at 40, bit 0x100000 = arch-specific 'a').
Exit status 1 when the file holds no CUDA code.
"""
import struct
import sys

FATBIN_MAGIC = 0xBA55ED50
ARCH_SPECIFIC_FLAG = 0x100000


def cuda_targets(data: bytes) -> list:
    magic = struct.pack('<I', FATBIN_MAGIC)
    found = set()
    start = data.find(magic)
    while start >= 0:
        header_size, body_size = struct.unpack_from('<HQ', data, start + 6)
        pos, end = start + header_size, min(len(data), start + header_size + body_size)
        while pos + 48 <= end:
            kind = struct.unpack_from('<H', data, pos)[0]
            entry_header = struct.unpack_from('<I', data, pos + 4)[0]
            payload = struct.unpack_from('<Q', data, pos + 8)[0]
            if kind not in (1, 2) or entry_header < 48:
                break
            sm = struct.unpack_from('<I', data, pos + 28)[0]
            flags = struct.unpack_from('<Q', data, pos + 40)[0]
            name = ('sm_' if kind == 2 else 'compute_') + str(sm) + ('a' if flags & ARCH_SPECIFIC_FLAG else '')
            found.add(name)
            pos += entry_header + payload
        start = data.find(magic, start + 4)
    return sorted(found, key=lambda n: (n.startswith('compute'), n))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: fatbin_archs.py LIBRARY')
    with open(sys.argv[1], 'rb') as f:
        targets = cuda_targets(f.read())
    print(' '.join(targets) if targets else 'none')
    sys.exit(0 if targets else 1)

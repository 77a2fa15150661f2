#!/usr/bin/python3
"""fingerprint_check.py - reference fingerprints for the aas schemas.

An implementation independent of common/codec_pcf.c, used by test_codec:
the Parsing Canonical Form comes from python3-avro
(avro.schema.parse(text).canonical_form) and CRC-64-AVRO is written here from
the Avro specification ("Schema Fingerprints").

Usage: fingerprint_check.py SCHEMA.avsc...
Prints one line per file: <16 hex digits> <canonical form>.
The hex is the fingerprint as a number (most significant digit first); on the
wire it travels little-endian.  Exit status 77 if python3-avro is missing.
"""
import sys

try:
    import avro.schema
except ImportError:
    sys.stderr.write("fingerprint_check.py: python3-avro is not installed\n")
    sys.exit(77)

EMPTY = 0xC15D213AA4D7A795


def _table():
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    return table


FP_TABLE = _table()


def crc64_avro(data: bytes) -> int:
    fp = EMPTY
    for b in data:
        fp = (fp >> 8) ^ FP_TABLE[(fp ^ b) & 0xFF]
    return fp


def main(paths):
    if not paths:
        sys.stderr.write(__doc__)
        return 2
    for path in paths:
        with open(path, encoding="utf-8") as f:
            pcf = avro.schema.parse(f.read()).canonical_form
        print("%016x %s" % (crc64_avro(pcf.encode("utf-8")), pcf))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Writes progressive-501-scans.jpg: an 8x8 grey progressive JPEG from cjpeg (libjpeg-turbo-progs)
whose last scan is repeated until the file holds 501 or more scans. libjpeg only warns about the
repeated scans, so the file exercises DecodeImage's scan limit, not a decoder error.
Usage: make_progressive_501_scans.py OUT.jpg"""
import subprocess
import sys

pgm = b"P5\n8 8\n255\n" + bytes((i * 4) % 256 for i in range(64))
jpeg = subprocess.run(["cjpeg", "-grayscale", "-progressive"], input=pgm, check=True,
                      capture_output=True).stdout
assert jpeg.endswith(b"\xff\xd9")
last_scan = jpeg.rindex(b"\xff\xda")
scans = jpeg.count(b"\xff\xda")
body, scan = jpeg[:last_scan], jpeg[last_scan:-2]
with open(sys.argv[1], "wb") as out:
    out.write(body + scan * (501 - scans + 1) + b"\xff\xd9")

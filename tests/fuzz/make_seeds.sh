#!/usr/bin/env bash
# Regenerates the seed corpus of every fuzz target in tests/fuzz/corpus/<target>/: small valid
# inputs (plus a few edge cases) in each input layout the harness reads. Needs python3 and cjpeg
# (libjpeg-turbo-progs) for the JPEG seeds. Files the fuzzer added to a corpus are kept; only
# the seed-* files are rewritten.
#   tests/fuzz/make_seeds.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=$here/corpus
mkdir -p "$corpus"/{fuzz_job_spec,fuzz_image_folder,fuzz_idx,fuzz_wal,fuzz_snapshot}
rm -f "$corpus"/*/seed-*
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Job specs: the shipped jobs, with and without their comments.
for f in "$root"/jobs/*.yaml; do
  cp "$f" "$corpus/fuzz_job_spec/seed-$(basename "$f" .yaml)"
  grep -v '^ *#' "$f" | sed 's/ *#.*$//' > "$corpus/fuzz_job_spec/seed-$(basename "$f" .yaml)-bare"
done

python3 - "$corpus" "$tmp" <<'PY'
import gzip, os, struct, sys, zlib
corpus, tmp = sys.argv[1], sys.argv[2]

def put(target, name, data):
    with open(os.path.join(corpus, target, "seed-" + name), "wb") as f:
        f.write(data)

# --- job specs: small documents touching each section and the error paths ---
specs = {
    "minimal": "name: a\ntask: multiclass\ndata:\n  source: idx\n  path: /d\n",
    "unknown-fields": "name: a\ntask: multiclass\ndata: {source: idx, path: /d}\nembedding: {dim: 8}\nbogus: 1\nmodle: {}\n",
    "flow": "{name: b, task: face_triplet, data: {path: /x}, train: {epochs: 2, optimizer: {kind: sgd, lr: 0.1}}}\n",
    "anchors": "base: &b {epochs: 1}\nname: c\ntask: multiclass\ndata: {path: /d}\ntrain: *b\n",
    "multi-doc": "name: a\n---\nname: b\n",
    "list-root": "- 1\n- 2\n",
    "bad-utf8": "name: \xff\xfe\n",
}
for k, v in specs.items():
    put("fuzz_job_spec", k, v.encode("latin-1"))

# --- images: flags byte (bit 0 = decode to grey) + a PNG or JPEG file ---
def png(width, height, color_type, bit_depth, rows, palette=None, interlace=0, extra=b""):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if palette:
        out += chunk(b"PLTE", palette)
    out += extra
    out += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    return out

def rows_of(width, height, bpp_bytes, filt=0):
    data = b""
    for y in range(height):
        data += bytes([filt]) + bytes(((x * 37 + y * 91 + c * 13) & 0xff)
                                      for x in range(width) for c in range(bpp_bytes))
    return data

put("fuzz_image_folder", "png-rgb", b"\x00" + png(8, 6, 2, 8, rows_of(8, 6, 3)))
put("fuzz_image_folder", "png-rgba-grey-out", b"\x01" + png(5, 7, 6, 8, rows_of(5, 7, 4, 1)))
put("fuzz_image_folder", "png-grey", b"\x00" + png(9, 4, 0, 8, rows_of(9, 4, 1, 2)))
put("fuzz_image_folder", "png-grey-alpha", b"\x00" + png(4, 4, 4, 8, rows_of(4, 4, 2, 3)))
put("fuzz_image_folder", "png-rgb16", b"\x01" + png(4, 3, 2, 16, rows_of(4, 3, 6, 4)))
put("fuzz_image_folder", "png-grey1", b"\x00" + png(16, 2, 0, 1, rows_of(2, 2, 1)))
put("fuzz_image_folder", "png-palette",
    b"\x00" + png(6, 6, 3, 8, bytes(b for y in range(6) for b in [0] + [(x + y) % 4 for x in range(6)]),
                  palette=bytes(range(12)),
                  extra=b"\x00\x00\x00\x04tRNS\x00\x80\xff\x10" + b"\x00\x00\x00\x00"))
# Adam7: for a 3x3 image the passes hold pixels (0,0) | - | (4..) ... encode via per-pass rows.
def adam7(width, height):
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    data = b""
    for x0, y0, dx, dy in passes:
        xs = list(range(x0, width, dx)); ys = list(range(y0, height, dy))
        if not xs or not ys:
            continue
        for y in ys:
            data += b"\x00" + bytes(((x * 29 + y * 7) & 0xff) for x in xs)
    return data
put("fuzz_image_folder", "png-interlaced", b"\x00" + png(9, 9, 0, 8, adam7(9, 9), interlace=1))

# --- IDX: flags u8 (1: gzip images, 2: gzip labels, 4: class names) | label_bytes u16 LE |
# images | labels ---
def idx(n, rows, cols, labels):
    images = struct.pack(">IIII", 0x803, n, rows, cols) + bytes((i * 7) & 0xff for i in range(n * rows * cols))
    lab = struct.pack(">II", 0x801, n) + bytes(labels)
    return images, lab
for name, flags, (im, lab) in [
    ("plain", 0, idx(3, 4, 4, [0, 2, 1])),
    ("gz", 3, idx(2, 3, 5, [1, 1])),
    ("gz-images-names", 5, idx(4, 2, 2, [0, 1, 2, 0])),
    ("empty-set", 0, idx(0, 28, 28, [])),
]:
    put("fuzz_idx", name, bytes([flags]) + struct.pack("<H", len(lab)) + im + lab)

# --- CRC-32C (Castagnoli), as workers/embedding_store/storage/crc32c.cc ---
table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc = table[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff

def s16(s):
    return struct.pack("<H", len(s)) + s

# --- WAL: flags u8 (1: repair CRCs, 2: truncate torn tail) | log file ---
def wal_record(seq, rtype, fields):
    body = struct.pack("<Q", seq) + fields
    return struct.pack("<III", 0xD3A59FE7, len(body), crc32c(bytes([rtype]) + body)) + bytes([rtype]) + body
def enroll(seq, face_id, person, vec):
    return wal_record(seq, 1, struct.pack("<qq", face_id, 1700000000000 + face_id) + s16(person)
                      + s16(b"seed") + struct.pack("<I", len(vec)) + struct.pack("<%df" % len(vec), *vec))
log = (enroll(1, 1, b"alice", [0.5, -1.0, 2.0, 0.25]) + enroll(2, 2, b"bob", [1, 2, 3, 4])
       + wal_record(3, 2, struct.pack("<q", 1)) + wal_record(4, 3, s16(b"bob")))
put("fuzz_wal", "log", b"\x00" + log)
put("fuzz_wal", "log-truncate", b"\x02" + log)
put("fuzz_wal", "torn-tail", b"\x02" + log[:-5])
put("fuzz_wal", "corrupt-middle", b"\x00" + log[:40] + b"\x00" + log[41:])
put("fuzz_wal", "dim0", b"\x01" + enroll(1, 7, b"", []) + wal_record(2, 3, s16(b"")))
put("fuzz_wal", "empty", b"\x02")

# --- snapshot: flags u8 (1: repair size and checksums, 2: open with the header's dim) | file ---
def snapshot(dim, faces):
    body = b""
    for face_id, person, vec in faces:
        body += struct.pack("<qq", face_id, 1700000000000) + s16(person) + s16(b"src") \
                + struct.pack("<%df" % dim, *vec)
    h = b"DTEMBSNP" + struct.pack("<IIQqQQqQI", 1, dim, len(faces), len(faces) + 1, 9, 2,
                                  1700000000000, len(body), crc32c(body))
    return h + struct.pack("<I", crc32c(h)) + body
put("fuzz_snapshot", "dim4", b"\x00" + snapshot(4, [(1, b"alice", [1, 2, 3, 4]), (3, b"bob", [0, 0, 0, 1])]))
put("fuzz_snapshot", "dim2-header-dim", b"\x03" + snapshot(2, [(5, b"carol", [0.5, 0.5])]))
put("fuzz_snapshot", "dim0", b"\x03" + snapshot(0, [(1, b"x", []), (2, b"", [])]))
put("fuzz_snapshot", "empty-db", b"\x00" + snapshot(4, []))
PY

# JPEG seeds (cjpeg from a small PPM/PGM): baseline 4:2:0, 4:4:4, grey, progressive,
# optimised Huffman tables, restart markers, arithmetic coding is left out (stb refuses it).
python3 - "$tmp" <<'PY'
import sys
tmp = sys.argv[1]
w, h = 16, 12
with open(tmp + "/rgb.ppm", "wb") as f:
    f.write(b"P6\n%d %d\n255\n" % (w, h))
    f.write(bytes(((x * 16 + c * 80 + y * 5) & 0xff) for y in range(h) for x in range(w) for c in range(3)))
with open(tmp + "/grey.pgm", "wb") as f:
    f.write(b"P5\n%d %d\n255\n" % (w, h))
    f.write(bytes(((x * 13 + y * 17) & 0xff) for y in range(h) for x in range(w)))
PY
jpeg() {  # jpeg <name> <flags byte, octal> <cjpeg args...>
  local name=$1 flags=$2
  shift 2
  { printf "\\$flags"; cjpeg "$@"; } > "$corpus/fuzz_image_folder/seed-jpeg-$name"
}
jpeg baseline-420 000 -quality 75 "$tmp/rgb.ppm"
jpeg baseline-444-grey-out 001 -sample 1x1 -quality 90 "$tmp/rgb.ppm"
jpeg grey 000 -quality 50 "$tmp/grey.pgm"
jpeg progressive 000 -progressive "$tmp/rgb.ppm"
jpeg optimized-restart 001 -optimize -restart 1 "$tmp/rgb.ppm"
jpeg 422 000 -sample 2x1 "$tmp/rgb.ppm"
echo "seeds written to $corpus" >&2

#!/usr/bin/python3
"""An independent reader of TensorBoard event files, for tests.

Independent of dtrain's writer: the Event messages are parsed with Debian's python3-protobuf from
a minimal event.proto written below (TensorFlow's field numbers, TensorFlow's package) and
compiled by protoc at run time, and every TFRecord CRC is checked with python3-crc32c.

  read_tfevents.py FILE_OR_DIR...   prints one JSON object per event file:
  {"path": ..., "records": N, "events": [{"wall_time", "step", "file_version" | "values": [
      {"tag", "simple_value"} | {"tag", "image": {"width", "height", "colorspace", "png_base64"}}]}]}
Exit status 1 with a message naming the file and byte offset on any framing or CRC error.
"""
import base64
import glob
import importlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import crc32c

EVENT_PROTO = """
syntax = "proto3";
package tensorflow;
message Summary {
  message Image {
    int32 height = 1;
    int32 width = 2;
    int32 colorspace = 3;
    bytes encoded_image_string = 4;
  }
  message Value {
    string node_name = 7;
    string tag = 1;
    oneof value {
      float simple_value = 2;
      bytes obsolete_old_style_histogram = 3;
      Image image = 4;
    }
  }
  repeated Value value = 1;
}
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    bytes graph_def = 4;
    Summary summary = 5;
  }
}
"""


def compile_event_proto():
    out = tempfile.mkdtemp(prefix="tfevents-reader-")
    with open(os.path.join(out, "tf_event.proto"), "w") as f:
        f.write(EVENT_PROTO)
    subprocess.run(["protoc", "--python_out=" + out, "-I", out, os.path.join(out, "tf_event.proto")],
                   check=True)
    sys.path.insert(0, out)
    return importlib.import_module("tf_event_pb2")


def masked_crc(data):
    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def fail(path, offset, what):
    sys.exit("%s: byte %d: %s" % (path, offset, what))


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    offset = 0
    while offset < len(data):
        if len(data) - offset < 12:
            fail(path, offset, "truncated record header")
        header = data[offset:offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8:offset + 12])
        if header_crc != masked_crc(header):
            fail(path, offset, "length CRC mismatch")
        start = offset + 12
        if len(data) - start < length + 4:
            fail(path, offset, "truncated record data")
        payload = data[start:start + length]
        (payload_crc,) = struct.unpack("<I", data[start + length:start + length + 4])
        if payload_crc != masked_crc(payload):
            fail(path, offset, "data CRC mismatch")
        yield payload
        offset = start + length + 4


def main():
    pb = compile_event_proto()
    paths = []
    for arg in sys.argv[1:]:
        if os.path.isdir(arg):
            paths += sorted(glob.glob(os.path.join(arg, "*tfevents*")))
        else:
            paths.append(arg)
    if not paths:
        sys.exit("no event files in " + " ".join(sys.argv[1:]))
    for path in paths:
        events = []
        for payload in read_records(path):
            event = pb.Event()
            event.ParseFromString(payload)
            e = {"wall_time": event.wall_time, "step": event.step}
            what = event.WhichOneof("what")
            if what == "file_version":
                e["file_version"] = event.file_version
            elif what == "summary":
                values = []
                for v in event.summary.value:
                    kind = v.WhichOneof("value")
                    if kind == "simple_value":
                        values.append({"tag": v.tag, "simple_value": v.simple_value})
                    elif kind == "image":
                        values.append({"tag": v.tag, "image": {
                            "width": v.image.width, "height": v.image.height,
                            "colorspace": v.image.colorspace,
                            "png_base64": base64.b64encode(v.image.encoded_image_string).decode()}})
                    else:
                        fail(path, 0, "unexpected summary value kind %r" % kind)
                e["values"] = values
            else:
                fail(path, 0, "unexpected event kind %r" % what)
            events.append(e)
        print(json.dumps({"path": path, "records": len(events), "events": events}))


if __name__ == "__main__":
    main()

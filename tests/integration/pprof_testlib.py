"""Reading the tools' pprof profiles back with real readers: a protobuf decoder of the public
profile.proto schema (protoc's Python output of src/core/proto/profile.proto, compiled at test time
with Debian's protobuf-compiler, decoded by python3-protobuf) and Go's pprof (`go tool pprof`, from
Debian's golang-go)."""
import collections
import gzip
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.environ.get("LOCKKIT_SOURCE") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PROTO = os.path.join(SOURCE, "src", "core", "proto", "profile.proto")

_module = None
_tmp = None


def profile_pb2():
    """The generated Python module of profile.proto (compiled once per test process)."""
    global _module, _tmp
    if _module is None:
        if shutil.which("protoc") is None:
            raise AssertionError("protoc not installed (protobuf-compiler): scripts/setup installs it")
        _tmp = tempfile.TemporaryDirectory()
        subprocess.run(["protoc", f"--proto_path={os.path.dirname(PROTO)}", f"--python_out={_tmp.name}", PROTO],
                       check=True, capture_output=True, text=True)
        sys.path.insert(0, _tmp.name)
        _module = importlib.import_module("profile_pb2")
    return _module


class Profile:
    """A decoded profile: `samples` as dicts of values by sample type name, labels (strings and
    numbers) and frames (leaf first: function, source file, mapping file, build-id)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] != b"\x1f\x8b":
            raise AssertionError(f"{path} is not gzipped")
        p = profile_pb2().Profile()
        p.ParseFromString(gzip.decompress(data))
        self.raw = p
        s = list(p.string_table)
        if not s or s[0] != "":
            raise AssertionError("string_table must start with the empty string")
        self.strings = s
        self.types = [(s[t.type], s[t.unit]) for t in p.sample_type]
        self.default_type = s[p.default_sample_type]
        self.duration_ns = p.duration_nanos
        self.comments = [s[c] for c in p.comment]
        self.mappings = {m.id: m for m in p.mapping}
        functions = {f.id: f for f in p.function}
        locations = {l.id: l for l in p.location}
        self.samples = []
        for sm in p.sample:
            frames = []
            for lid in sm.location_id:
                loc = locations[lid]
                m = self.mappings.get(loc.mapping_id) if loc.mapping_id else None
                fn = functions[loc.line[0].function_id] if loc.line else None
                frames.append({
                    "function": s[fn.name] if fn else None,
                    "file": s[fn.filename] if fn else "",
                    "line": loc.line[0].line if loc.line else 0,
                    "address": loc.address,
                    "mapping": s[m.filename] if m else None,
                    "build_id": s[m.build_id] if m else None,
                })
            labels = {}
            for l in sm.label:
                labels[s[l.key]] = s[l.str] if l.str else l.num
            values = {t[0]: v for t, v in zip(self.types, sm.value)}
            self.samples.append({"values": values, "labels": labels, "frames": frames})

    def sums(self, key, value):
        """{label value of `key`: sum of sample values of type `value`}."""
        out = collections.Counter()
        for sm in self.samples:
            out[sm["labels"].get(key)] += sm["values"][value]
        return dict(out)


def go_available():
    return shutil.which("go") is not None


def go_raw_sums(path, label, types):
    """`go tool pprof -raw` of the profile, summed per value of string label `label`:
    {label value: [sum of each sample type in file order]}. `types` is the number of sample types."""
    env = dict(os.environ)
    env.setdefault("HOME", tempfile.gettempdir())
    env["PPROF_TMPDIR"] = tempfile.gettempdir()
    r = subprocess.run(["go", "tool", "pprof", "-raw", path], capture_output=True, text=True, timeout=120, env=env)
    if r.returncode != 0:
        raise AssertionError(f"go tool pprof -raw failed: {r.stderr}")
    sums = {}
    lines = r.stdout.splitlines()
    try:
        start = lines.index("Samples:") + 2  # the sample types line follows "Samples:"
    except ValueError:
        raise AssertionError(f"no samples in go tool pprof -raw output:\n{r.stdout}")
    current = None
    for line in lines[start:]:
        if not line.startswith(" "):
            break  # "Locations", "Mappings"
        head = re.match(r"^\s+(-?\d+(?:\s+-?\d+)*):", line)
        if head:
            current = [int(x) for x in head.group(1).split()]
            if len(current) != types:
                raise AssertionError(f"expected {types} values: {line}")
            continue
        for key, val in re.findall(r"(\w+):\[([^\]]*)\]", line):
            if key == label and current is not None:
                acc = sums.setdefault(val, [0] * types)
                for i, v in enumerate(current):
                    acc[i] += v
                current = None
    return sums


def build_id(path):
    """The GNU build-id of an ELF file in hex (readelf -n, binutils)."""
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Build ID:\s*([0-9a-f]+)", out)
    return m.group(1) if m else ""

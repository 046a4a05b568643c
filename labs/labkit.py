"""Shared machinery of the labs: TODO regions in reference solutions, skeletons made from them,
variants that put a student's region into the reference, and building a C++ lab's program.

A region in a solution file is a marked block:

    // BEGIN TODO 3: attach lock entry, lock return and unlock entry
    // HINT: a line of advice, kept (as a comment) in the skeleton
    // STUB: lab_todo(3);          <- code that stands in for the solution in the skeleton
    ...the reference solution...
    // END TODO 3

("#" instead of "//" in Python and shell-like files.) The skeleton keeps both marker lines, the
hints and the stub, and drops the solution. A student writes their code between the markers; the
grader takes what is between them.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess

LABS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(LABS_DIR)

_BEGIN = re.compile(r"^(\s*)(//|#) BEGIN TODO (\d+): (.+?)\s*$")
_END = re.compile(r"^\s*(//|#) END TODO (\d+)\s*$")
_HINT = re.compile(r"^(\s*)(//|#) HINT:(?: (.*))?$")
_STUB = re.compile(r"^(\s*)(//|#) STUB: (.*)$")


class LabError(Exception):
    """A problem with the lab's input (exit 2) or its environment (exit 1)."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


class Region:
    def __init__(self, number, title, begin, body, end):
        self.number = number
        self.title = title
        self.begin = begin  # the BEGIN line
        self.body = body    # the lines between the markers
        self.end = end      # the END line


def parse(text, name="file"):
    """Splits `text` into plain lines (str) and Regions, in order."""
    parts = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        m = _BEGIN.match(lines[i].rstrip("\n"))
        if not m:
            if _END.match(lines[i].rstrip("\n")):
                raise LabError(f"{name}:{i + 1}: END TODO without its BEGIN", 2)
            parts.append(lines[i])
            i += 1
            continue
        number, title = int(m.group(3)), m.group(4)
        j = i + 1
        while j < len(lines):
            e = _END.match(lines[j].rstrip("\n"))
            if e:
                if int(e.group(2)) != number:
                    raise LabError(f"{name}:{j + 1}: END TODO {e.group(2)} closes BEGIN TODO {number}", 2)
                break
            if _BEGIN.match(lines[j].rstrip("\n")):
                raise LabError(f"{name}:{j + 1}: BEGIN TODO inside TODO {number}", 2)
            j += 1
        if j == len(lines):
            raise LabError(f"{name}:{i + 1}: BEGIN TODO {number} has no END TODO {number}", 2)
        parts.append(Region(number, title, lines[i], lines[i + 1:j], lines[j]))
        i = j + 1
    return parts


def regions(text, name="file"):
    """{number: Region} of a file's text."""
    out = {}
    for p in parse(text, name):
        if isinstance(p, Region):
            if p.number in out:
                raise LabError(f"{name}: TODO {p.number} appears twice", 2)
            out[p.number] = p
    return out


def skeleton_of(text, name="file"):
    """The text with every region's solution replaced by its hints (as comments) and its stub."""
    out = []
    for p in parse(text, name):
        if isinstance(p, str):
            out.append(p)
            continue
        out.append(p.begin)
        for line in p.body:
            h = _HINT.match(line.rstrip("\n"))
            s = _STUB.match(line.rstrip("\n"))
            if h:
                out.append(f"{h.group(1)}{h.group(2)} {h.group(3) or ''}".rstrip() + "\n")
            elif s:
                out.append(f"{s.group(1)}{s.group(3)}\n")
        out.append(p.end)
    return "".join(out)


def splice(text, number, body, name="file"):
    """`text` with the body of region `number` replaced by `body` (a list of lines)."""
    out, found = [], False
    for p in parse(text, name):
        if isinstance(p, str):
            out.append(p)
        else:
            out.append(p.begin)
            out.extend(body if p.number == number else p.body)
            out.append(p.end)
            found = found or p.number == number
    if not found:
        raise LabError(f"{name}: no TODO {number}", 2)
    return "".join(out)


def solution_dir(lab):
    return os.path.join(LABS_DIR, lab, "solution")


def solution_files(lab):
    """{file name: text} of a lab's reference solution."""
    d = solution_dir(lab)
    out = {}
    for f in sorted(os.listdir(d)):
        path = os.path.join(d, f)
        if os.path.isfile(path):
            with open(path) as fh:
                out[f] = fh.read()
    return out


def todos(lab):
    """{number: (file name, title)} of every TODO of a lab, from its solution."""
    out = {}
    for f, text in solution_files(lab).items():
        for n, r in regions(text, f).items():
            if n in out:
                raise LabError(f"lab {lab}: TODO {n} is in both {out[n][0]} and {f}", 2)
            out[n] = (f, r.title)
    return dict(sorted(out.items()))


def generate(lab, outdir):
    """Writes the skeleton of every file of a lab's solution into `outdir`."""
    os.makedirs(outdir, exist_ok=True)
    for f, text in solution_files(lab).items():
        path = os.path.join(outdir, f)
        with open(path + ".tmp", "w") as fh:
            fh.write(skeleton_of(text, f))
        shutil.copymode(os.path.join(solution_dir(lab), f), path + ".tmp")
        os.replace(path + ".tmp", path)


def read_tree(d, names):
    """{name: text} of the files `names` in directory `d`; a missing file is an error."""
    out = {}
    for f in names:
        path = os.path.join(d, f)
        if not os.path.isfile(path):
            raise LabError(f"{d} has no {f} (a lab directory holds {', '.join(names)})", 2)
        with open(path) as fh:
            out[f] = fh.read()
    return out


def variant(lab, student, number):
    """The reference solution of `lab` with TODO `number` as `student` ({name: text}) wrote it.
    Raises LabError when the student's file has lost the TODO's markers."""
    ref = solution_files(lab)
    f, _ = todos(lab)[number]
    mine = regions(student[f], f)
    if number not in mine:
        raise LabError(f"{f} has no 'BEGIN TODO {number}' ... 'END TODO {number}' markers: "
                       f"write your code between them", 2)
    ref[f] = splice(ref[f], number, mine[number].body, f)
    return ref


def tree_hash(files):
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.encode() + b"\0" + files[f].encode() + b"\0")
    return h.hexdigest()[:16]


# ---- Building a C++ lab's program ----

def build_dir():
    d = os.environ.get("LOCKKIT_BUILD_DIR", os.path.join(ROOT, "build"))
    return os.path.abspath(d)


def toolchain():
    """What CMake wrote about how to compile against lockkit's core library."""
    path = os.path.join(build_dir(), "labs", "toolchain.json")
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise LabError(f"no build of lockkit at {build_dir()} (no labs/toolchain.json): build it first "
                       f"(cmake -S . -B build && cmake --build build -j2), or set LOCKKIT_BUILD_DIR")


def embed_source(symbol_texts):
    """C++ text defining lockkit::probes::<symbol> = <text> for each (symbol, text)."""
    out = ["// Generated by labs/labkit.py. Do not edit.\n#include <string>\nnamespace lockkit::probes {\n"]
    for symbol, text in symbol_texts:
        out.append(f"extern const std::string {symbol};\nconst std::string {symbol} =\n")
        for i in range(0, len(text), 8000):
            piece = text[i:i + 8000]
            if ")lkbpf\"" in piece:
                raise LabError("the BPF text contains the sequence )lkbpf\" and cannot be embedded")
            out.append(f'  R"lkbpf({piece})lkbpf"\n')
        if not text:
            out.append('  ""\n')
        out.append(";\n")
    out.append("}\n")
    return "".join(out)


def build_cpp(files, main_cpp, embeds, output, log, srcdir):
    """Compiles `files` ({name: text}) into the program `output`: `main_cpp` is the C++ file,
    `embeds` a list of (symbol, [file names]) whose concatenated text becomes each symbol (a name
    that is not one of `files`, common.h, comes from probes/). The sources are written to `srcdir`
    (the same directory for the same tree, so that ccache recognises a tree built before).
    Returns True on success; the compiler's output goes to `log` (a path)."""
    tc = toolchain()
    os.makedirs(srcdir, exist_ok=True)
    for f, text in files.items():
        with open(os.path.join(srcdir, f), "w") as fh:
            fh.write(text)
    symbol_texts = []
    for symbol, names in embeds:
        text = ""
        for n in names:
            if n in files:
                body = files[n]
            else:
                with open(os.path.join(ROOT, "probes", n)) as fh:
                    body = fh.read()
            text += f"// ---- {n} ----\n{body}\n"
        symbol_texts.append((symbol, text))
    with open(os.path.join(srcdir, "embedded.cpp"), "w") as fh:
        fh.write(embed_source(symbol_texts))
    cmd = tc["cxx"] + tc["cxxflags"] + [f"-I{srcdir}"] + [f"-I{d}" for d in tc["includes"]]
    cmd += [os.path.join(srcdir, main_cpp), os.path.join(srcdir, "embedded.cpp"), "-o", output]
    cmd += tc["libs"]
    with open(log, "w") as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=srcdir)
    return r.returncode == 0


def cached_build(program, files, main_cpp, embeds, log):
    """The program built from `files`, kept under the build directory by the hash of the tree (a
    tree is compiled once, until the core library or the flags change). Returns (path, None), or
    (None, the first compiler errors)."""
    tc = toolchain()
    core = os.stat(tc["libs"][0])
    key = tree_hash(dict(files, **{"\0toolchain": json.dumps(tc) + f"{core.st_mtime_ns}:{core.st_size}"}))
    d = os.path.join(build_dir(), "labs", "cache", key)
    path = os.path.join(d, program)
    if os.path.exists(path):
        return path, None
    part = f"{path}.{os.getpid()}"
    if not build_cpp(files, main_cpp, embeds, part, log, os.path.join(d, "src")):
        return None, first_error(log) or f"the build failed (see {log})"
    os.replace(part, path)
    return path, None


def first_error(log, limit=3):
    """The first compiler error lines of a build log."""
    try:
        with open(log) as fh:
            lines = [l.rstrip() for l in fh if "error" in l]
    except FileNotFoundError:
        return ""
    return "; ".join(lines[:limit])
